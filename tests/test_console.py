"""The admin console in a real browser: Debian's Chromium, driven by Playwright, against a real
`hookline serve` and a real receiver on loopback. Every screen is written as a PNG to `SCREENSHOTS`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

from domain.built_in_types import BUILT_IN
from domain.catalogue import ENVELOPE_VARIABLES
from domain.roles import GRANTS, Permission
from harness.certificates import Authority
from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, UPDATE_WEBHOOK, WEBHOOK, webhook_input
from tests.support import Received, Receiver, Server, server_env, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Loopback targets allowed; a failed attempt is retried after a second."""
    server = Server(
        directory=tmp_path_factory.mktemp("console"),
        env=server_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true", HOOKLINE_RETRY_SCHEDULE="1,1,1"),
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the console tests drive Debian's Chromium "
            "(`apt-get update && apt-get install -y chromium`, which .ci/run does)"
        )
    SCREENSHOTS.mkdir(exist_ok=True)
    print(f"console screenshots: {SCREENSHOTS}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """One browser tab on the console, with every console error and uncaught exception it had."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text} ({message.location.get('url')})")

    def shot(self, name: str, full_page: bool = True) -> None:
        self.page.wait_for_load_state("networkidle")
        self.page.mouse.move(0, 0)  # no hover effect in the picture
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page, animations="disabled")

    @property
    def flash(self) -> Locator:
        """The message a change leaves on the next screen."""
        return self.page.locator("main .flash")

    def sign_in(self, key: str) -> None:
        self.page.goto(self.url + "/")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_label("API key").press("Enter")
        expect(self.page.get_by_test_id("identity")).to_be_visible()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        expect(self.page.get_by_role("button", name="Sign in")).to_be_visible()

    def go(self, link: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
        expect(self.page.get_by_role("heading", level=1, name=link)).to_be_visible()


@pytest.fixture
def console(browser: Browser, server: Server) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    tab = Console(page=page, url=server.url)
    page.on("console", tab.on_console)
    page.on("pageerror", lambda error: tab.errors.append(f"pageerror: {error}"))
    try:
        yield tab
    finally:
        context.close()


UNLABELLED = """() => [...document.querySelectorAll("main input, main select, main textarea")]
    .filter((el) => el.offsetParent !== null && !el.labels.length && !el.getAttribute("aria-label"))
    .map((el) => el.outerHTML)"""


def assert_labelled(page: Page) -> None:
    """Every visible control of the screen has a label (or an aria-label)."""
    assert page.evaluate(UNLABELLED) == []


def field_(page: Page, name: str) -> Locator:
    """The control of the field a server problem would name (`data-field`)."""
    return page.locator(f'[data-field="{name}"]').locator("input:visible, select:visible, textarea").first


ROLE_TABLE = """async () => {
    const roles = await import("/roles.js");
    return { permissions: roles.PERMISSION, grants: roles.GRANTS };
}"""
ENVELOPE = "async (types) => (await import('/shared.js')).envelopeOf(types)"


def test_the_consoles_role_table_and_envelope_variables_are_the_servers_own(
    console: Console, server: Server
) -> None:
    """The console's role table and envelope variables, as served, are the server's: they cannot drift."""
    page = console.page
    page.goto(server.url + "/")

    served = page.evaluate(ROLE_TABLE)
    assert served["permissions"] == {p.name: p.value for p in Permission}
    assert {role: sorted(granted) for role, granted in served["grants"].items()} == {
        role.value: sorted(p.value for p in granted) for role, granted in GRANTS.items()
    }
    viewer = server.key("console-envelope", "viewer")
    types = server.gql(viewer, "{ eventTypes { name variables } }").ok()["eventTypes"]
    assert page.evaluate(ENVELOPE, types) == list(ENVELOPE_VARIABLES)
    assert console.errors == []


def test_an_admin_manages_a_webhook_from_sign_in_to_delete(
    console: Console, server: Server, receiver: Receiver
) -> None:
    page = console.page
    admin = server.key("console-acme", "admin")
    colleague = server.key("console-acme", "admin")
    publisher = server.key("console-acme", "publisher")

    def answer(request: Received) -> tuple[int, dict[str, str], str]:
        deliveries = [r for r in receiver.requests if not r.headers["webhook-id"].startswith("test_")]
        if request in deliveries and len(deliveries) == 1:
            return 500, {}, "busy, try again"  # the first delivery fails once, then is retried
        return 200, {"Content-Type": "application/json"}, '{"result": "created", "number": "INC0012345"}'

    receiver.respond = answer

    # -- sign in: a wrong key is refused, the right one is kept in sessionStorage only
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Hookline")).to_be_visible()
    console.shot("01-sign-in")
    page.get_by_label("API key").fill("hl_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    console.sign_in(admin)
    expect(page.get_by_test_id("identity")).to_have_text(re.compile("console-acme.*admin"))
    assert page.evaluate("sessionStorage.getItem('hookline.apiKey')") == admin
    assert page.evaluate("localStorage.length") == 0
    expect(page.get_by_role("heading", level=1, name="Webhooks")).to_be_visible()
    expect(page.get_by_text("No webhooks yet")).to_be_visible()

    # -- a credential, listed masked
    console.go("Credentials")
    page.get_by_label("Name", exact=True).fill("ServiceNow token")
    page.get_by_label("Bearer token").check()
    page.get_by_label("Token", exact=True).fill("sn-secret-token-1234")
    page.get_by_role("button", name="Create credential").click()
    expect(console.flash).to_contain_text("Created credential “ServiceNow token”")
    row = page.locator("tr", has_text="ServiceNow token")
    expect(row).to_contain_text("Bearer token")
    expect(row).not_to_contain_text("sn-secret-token-1234")
    assert_labelled(page)
    console.shot("02-credentials")

    # -- event types: the built-ins, and one of the organisation's own defined from a sample
    console.go("Event types")
    builtin = page.get_by_role("region", name="Built-in catalogue").locator("[data-type]")
    expect(builtin).to_have_count(len(BUILT_IN))
    page.get_by_label("Name", exact=True).fill("monitor.alert")
    page.get_by_label("Description").first.fill("An uptime monitor changed state")
    sample = page.get_by_label("Sample payload (JSON object)")
    sample.fill('{"monitor": "api", "host": {"name": "web-1"')
    expect(page.get_by_text("Not valid JSON")).to_be_visible()
    sample.fill('{"monitor": "api", "severity": 2, "host": {"name": "web-1"}}')
    expect(page.locator(".preview")).to_contain_text("host.name")
    page.get_by_role("button", name="Define event type").click()
    expect(console.flash).to_contain_text("Defined “monitor.alert”")
    own = page.get_by_role("region", name="Your organisation's types")
    expect(own.locator('[data-type="monitor.alert"]')).to_contain_text("host.name")
    assert_labelled(page)
    console.shot("03-event-types")

    # -- create: event types from the catalogue, a condition group, a template built by clicking
    console.go("Webhooks")
    page.get_by_role("link", name="New webhook").click()
    expect(page.get_by_role("heading", level=1, name="New webhook")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Incidents to ServiceNow")
    page.get_by_label("Description").fill("Disk alerts of the Paris workspaces")
    page.get_by_label("alert.activated").check()
    variables = page.get_by_role("complementary", name="Template variables")
    expect(variables).to_contain_text("workspace_reporting_group_id")
    page.get_by_label("Target URL").fill("ftp://127.0.0.1/hooks")  # refused by the server
    credential = page.get_by_label("Credential")
    option = credential.locator("option", has_text="ServiceNow token").text_content()
    assert option is not None
    assert "sn-secret-token-1234" not in option
    credential.select_option(label=option)
    page.get_by_role("button", name="Add header").click()
    page.get_by_label("Header 1 name").fill("X-Team")
    page.get_by_label("Header 1 value").fill("ops")
    page.get_by_role("button", name="Add a group of conditions").click()
    field_(page, "filters[0].conditions[0].field").fill("alert_name")
    field_(page, "filters[0].conditions[0].operator").select_option("CONTAINS")
    field_(page, "filters[0].conditions[0].values").fill("Disk")
    page.get_by_role("button", name="Add a condition to group 1").click()
    field_(page, "filters[0].conditions[1].field").fill("workspace_reporting_group_id")
    field_(page, "filters[0].conditions[1].operator").select_option("GTE")
    field_(page, "filters[0].conditions[1].values").fill("lots")  # refused: GTE takes a number

    template = page.get_by_label("Payload template")
    template.fill('{"short_description": ')
    variables.get_by_role("button", name="alert_name", exact=True).click()
    expect(page.locator(".template-status")).to_contain_text("Not valid JSON")
    console.shot("04-webhook-form-json-error")
    page.keyboard.type(', "group": ')
    variables.get_by_role("button", name="workspace_reporting_group_id", exact=True).click()
    page.keyboard.type(', "source": "Hookline for {{organization_name}}"}')
    expect(template).to_have_value(
        '{"short_description": "{{alert_name}}", "group": "{{workspace_reporting_group_id}}", '
        '"source": "Hookline for {{organization_name}}"}'
    )
    expect(page.locator(".template-status")).to_have_text("Valid JSON.")

    page.get_by_role("button", name="Create webhook").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("The webhook was not saved")
    target_error = page.locator('[data-field="targetUrl"] .field-error')
    expect(target_error).to_contain_text("must be an http or https URL")
    expect(page.get_by_label("Target URL")).to_have_attribute("aria-invalid", "true")
    values_error = page.locator('[data-field="filters[0].conditions[1].values"] .field-error')
    expect(values_error).to_contain_text("GTE")
    assert_labelled(page)
    console.shot("05-webhook-form-server-errors")

    page.get_by_label("Target URL").fill(receiver.url + "/api/now/table/incident")
    expect(target_error).to_be_hidden()
    field_(page, "filters[0].conditions[1].values").fill("40")
    page.get_by_role("button", name="Create webhook").click()
    expect(console.flash).to_contain_text("Created “Incidents to ServiceNow”")
    webhook_id = page.url.rsplit("/", 1)[1]
    stored = server.gql(admin, WEBHOOK, {"id": webhook_id}).ok()["webhook"]
    assert stored["filters"] == [
        {
            "conditions": [
                {"field": "alert_name", "operator": "CONTAINS", "values": ["Disk"]},
                {"field": "workspace_reporting_group_id", "operator": "GTE", "values": [40]},
            ]
        }
    ]
    assert stored["headers"] == [{"name": "X-Team", "value": "ops"}]
    assert stored["credentialId"] is not None
    definition = page.locator("dl.definition")
    expect(definition).to_contain_text("alert_name contains")
    expect(definition).to_contain_text("workspace_reporting_group_id ≥ 40")
    page.get_by_role("button", name="Show secret").click()
    expect(definition).to_contain_text(stored["signingSecret"])
    page.get_by_role("button", name="Show secret").click()
    expect(definition).not_to_contain_text(stored["signingSecret"])

    # -- send a test to the receiver and see the result
    page.get_by_role("button", name="Send test").click()
    result = page.get_by_test_id("test-result")
    expect(result).to_contain_text("Succeeded")
    expect(result).to_contain_text("Status 200")
    expect(result).to_contain_text(re.compile(r"Duration \d+\.\d ms"))
    expect(result).to_contain_text('"short_description": "{{alert_name}}"')  # placeholders unreplaced
    expect(result).to_contain_text("INC0012345")
    (tested,) = receiver.requests
    assert tested.headers["Authorization"] == "Bearer sn-secret-token-1234"
    assert tested.headers["X-Team"] == "ops"
    console.shot("06-webhook-send-test")

    # -- the list: toggle in place, filter by active and by event type
    console.go("Webhooks")
    switch = page.get_by_role("switch", name="Active: Incidents to ServiceNow")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    wait_until(lambda: server.gql(admin, WEBHOOK, {"id": webhook_id}).ok()["webhook"]["active"] is False)
    page.get_by_label("Status").select_option("Active")
    expect(page.get_by_text("No webhook matches these filters.")).to_be_visible()
    page.get_by_label("Status").select_option("Inactive")
    expect(switch).to_be_visible()
    page.get_by_label("Event type").select_option("ticket.created")
    expect(page.get_by_text("No webhook matches these filters.")).to_be_visible()
    page.get_by_label("Event type").select_option("alert.activated")
    page.get_by_label("Status").select_option("All")
    # Press the switch of the list as it stands once the reload for "All" has finished.
    expect(page.get_by_text("Incidents to ServiceNow").first).to_be_visible()
    expect(page.locator(".table-card")).not_to_have_attribute("aria-busy", "true")
    switch.press("Space")  # keyboard: back on
    expect(switch).to_have_attribute("aria-checked", "true")
    wait_until(lambda: server.gql(admin, WEBHOOK, {"id": webhook_id}).ok()["webhook"]["active"] is True)
    page.get_by_label("Event type").select_option("")
    console.shot("07-webhooks")

    # -- deliveries, live: a published event turns SUCCEEDED on screen, without a reload
    page.get_by_role("link", name="Incidents to ServiceNow").click()
    page.get_by_role("navigation", name="Webhook").get_by_role("link", name="Deliveries").click()
    expect(page.get_by_text("No deliveries yet")).to_be_visible()
    expect(page.locator(".live")).to_have_attribute("data-state", "live")
    page.evaluate("window.notReloaded = true")
    miss = {"alert_name": "High CPU", "workspace_reporting_group_id": 42}
    hit = {
        "alert_name": "Disk full on C:",
        "workspace_reporting_group_id": 42,
        "workspace_name": "LT-PAR-0412",
    }
    for i, payload in enumerate([miss, hit]):
        server.gql(
            publisher,
            PUBLISH,
            {"input": {"type": "alert.activated", "payload": payload, "idempotencyKey": f"e{i}"}},
        ).ok()
    rows = page.locator("tr[data-delivery]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-status", "SUCCEEDED", timeout=15_000)
    expect(rows.first).to_contain_text("HTTP 200")
    expect(rows.first.locator("td").nth(3)).to_have_text("2")  # the failed attempt and its retry
    assert page.evaluate("window.notReloaded") is True
    rows.first.get_by_role("button", name="Attempts").click()
    attempts = page.locator("tr.detail:visible")
    expect(attempts).to_contain_text("busy, try again")
    expect(attempts).to_contain_text("INC0012345")
    delivered = json.loads(receiver.requests[-1].body)
    assert delivered == {
        "short_description": "Disk full on C:",
        "group": 42,
        "source": "Hookline for console-acme",
    }
    rows.first.get_by_role("button", name=re.compile("^Redeliver")).click()
    expect(rows.first.locator("td").nth(3)).to_have_text("3", timeout=15_000)
    expect(rows.first).to_have_attribute("data-status", "SUCCEEDED")
    assert page.evaluate("window.notReloaded") is True
    console.shot("08-deliveries")

    # -- edit with a stale version: the conflict is explained, nothing is lost
    page.get_by_role("navigation", name="Webhook").get_by_role("link", name="Overview").click()
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_test_id("editing-version")).to_have_text("Editing version 3")
    server.gql(
        colleague,
        UPDATE_WEBHOOK,
        {"id": webhook_id, "input": {"description": "Changed by a colleague"}, "expectedVersion": 3},
    ).ok()
    page.get_by_label("Name", exact=True).fill("Incidents to ServiceNow (prod)")
    page.get_by_role("button", name="Save changes").click()
    conflict = page.locator(".conflict")
    expect(conflict).to_contain_text("changed while you were editing")
    expect(conflict).to_contain_text("You started from version 3, but it is now at version 4")
    expect(conflict.get_by_role("listitem")).to_have_text(["Description: Changed by a colleague"])
    expect(conflict).to_be_focused()
    assert server.gql(admin, WEBHOOK, {"id": webhook_id}).ok()["webhook"]["name"] == "Incidents to ServiceNow"
    console.shot("10-edit-conflict")
    page.get_by_role("button", name="Load version 4 (discard my edits)").click()
    expect(page.get_by_test_id("editing-version")).to_have_text("Editing version 4")
    expect(page.get_by_label("Description")).to_have_value("Changed by a colleague")
    page.get_by_label("Name", exact=True).fill("Incidents to ServiceNow (prod)")
    page.get_by_role("button", name="Save changes").click()
    expect(console.flash).to_contain_text("version 5")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Incidents to ServiceNow (prod)")

    # -- history: who changed what, when, and the version as it stood
    page.get_by_role("navigation", name="Webhook").get_by_role("link", name="History").click()
    history = page.locator("tr[data-record]")
    expect(history).to_have_count(5)
    me, other = (f"admin key {key.split('_')[1][:8]}" for key in (admin, colleague))
    expect(history.nth(0)).to_contain_text(re.compile(f"1.*{me}.*Created “Incidents to ServiceNow”"))
    expect(history.nth(1)).to_contain_text(re.compile(f"2.*{me}.*Switched off"))
    expect(history.nth(2)).to_contain_text(re.compile(f"3.*{me}.*Switched on"))
    expect(history.nth(3)).to_contain_text(
        re.compile(f"4.*{other}.*Changed description.*Changed by a colleague")
    )
    expect(history.nth(4)).to_contain_text(
        re.compile(f"5.*{me}.*Changed name.*Incidents to ServiceNow \\(prod\\)")
    )
    page.get_by_role("button", name="View version 2").click()
    as_of = page.locator(".as-of")
    expect(as_of).to_contain_text("Version 2, as it stood on")
    expect(as_of).to_contain_text("Incidents to ServiceNow")
    expect(as_of).to_contain_text("Inactive")
    expect(as_of).not_to_contain_text("(prod)")
    console.shot("09-history")

    # -- delete: confirmed, and said to be final
    page.get_by_role("navigation", name="Webhook").get_by_role("link", name="Overview").click()
    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("This cannot be undone")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    console.shot("11-delete-confirm", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete webhook").click()
    expect(console.flash).to_contain_text("Deleted “Incidents to ServiceNow (prod)”")
    expect(page.get_by_text("No webhooks yet")).to_be_visible()
    assert server.gql(admin, WEBHOOK, {"id": webhook_id}).ok()["webhook"] is None
    console.shot("12-webhook-deleted")
    page.goto(f"{server.url}/#/webhooks/{webhook_id}/history")  # its history stays readable
    expect(page.get_by_role("heading", level=1)).to_contain_text("Deleted")
    expect(history).to_have_count(6)
    expect(history.nth(5)).to_contain_text("Deleted")

    assert console.errors == []


def test_what_the_console_shows_depends_on_the_role(
    console: Console, server: Server, receiver: Receiver
) -> None:
    page = console.page
    org = "console-roles"
    admin = server.key(org, "admin")
    api_key, token = "ak-console-secret-7f3e", "qt-console-secret-9c1d"  # each webhook's secrets
    headers = [{"name": "X-Api-Key", "value": api_key}, {"name": "X-Team", "value": "ops"}]
    for i in range(12):
        server.gql(
            admin,
            CREATE_WEBHOOK,
            {
                "input": webhook_input(
                    f"{receiver.url}/hooks/{i}?token={token}",
                    name=f"Webhook {i:02d}",
                    eventTypes=["ticket.created" if i % 2 else "alert.activated"],
                    active=i % 4 != 0,
                    headers=headers,
                )
            },
        ).ok()
    some = server.gql(admin, "{ webhooks(first: 1) { edges { node { id targetUrl } } } }").ok()
    some_id = some["webhooks"]["edges"][0]["node"]["id"]
    some_url = some["webhooks"]["edges"][0]["node"]["targetUrl"]
    main = page.locator("main")

    # A viewer reads webhooks and deliveries, page by page, and changes nothing.
    console.sign_in(server.key(org, "viewer"))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["Webhooks", "Event types"])
    expect(page.get_by_test_id("identity")).to_have_text(re.compile("viewer"))
    expect(page.get_by_role("link", name="New webhook")).to_have_count(0)
    expect(page.get_by_role("switch")).to_have_count(0)
    expect(page.get_by_text("Showing 1–10 of 12")).to_be_visible()
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_text("Showing 11–12 of 12")).to_be_visible()
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(page.get_by_text("Showing 1–10 of 12")).to_be_visible()
    page.get_by_label("Status").select_option("Inactive")
    expect(page.get_by_text("Showing 1–3 of 3")).to_be_visible()
    page.get_by_label("Event type").select_option("ticket.created")
    expect(page.get_by_text("Showing 0 of 0")).to_be_visible()  # the inactive ones are all alerts
    page.get_by_label("Status").select_option("All")
    expect(page.get_by_text("Showing 1–6 of 6")).to_be_visible()
    page.get_by_label("Event type").select_option("")
    # Secret header values and URL parameters are masked for a viewer, in the list and on each webhook.
    expect(main.locator("code", has_text="?token=[redacted]")).to_have_count(10)
    console.shot("13-viewer-webhooks")
    page.reload()  # the key is kept for the session of the tab
    expect(page.get_by_test_id("identity")).to_have_text(re.compile("viewer"))
    expect(page.get_by_text("Showing 1–10 of 12")).to_be_visible()
    page.goto(f"{server.url}/#/webhooks/{some_id}")
    expect(page.locator("dl.definition")).to_be_visible()
    expect(page.locator("dl.definition")).to_contain_text("X-Api-Key: [redacted]")
    expect(page.locator("dl.definition")).to_contain_text("X-Team: ops")
    expect(page.locator("dl.definition")).to_contain_text(some_url.replace(token, "[redacted]"))
    for secret in (api_key, token):
        expect(main).not_to_contain_text(secret)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Send test")).to_have_count(0)
    expect(page.get_by_role("link", name="History")).to_have_count(0)
    expect(page.get_by_role("link", name="Deliveries")).to_be_visible()
    console.sign_out()
    assert page.evaluate("sessionStorage.length") == 0

    # An auditor reads everything, history included, and changes nothing.
    console.sign_in(server.key(org, "auditor"))
    expect(page.get_by_test_id("identity")).to_have_text(re.compile(f"{org}.*auditor"))
    page.goto(f"{server.url}/#/webhooks/{some_id}/history")
    expect(page.locator("tr[data-record]")).to_have_count(1)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    console.go("Credentials")
    expect(page.get_by_role("button", name="Create credential")).to_have_count(0)
    console.sign_out()

    # An admin reads the secrets as set, and an edit through the form keeps them as they were.
    console.sign_in(admin)
    page.goto(f"{server.url}/#/webhooks/{some_id}/edit")
    expect(page.get_by_label("Header 1 value")).to_have_value(api_key)
    expect(page.get_by_label("Target URL")).to_have_value(some_url)
    page.get_by_label("Name", exact=True).fill("Renamed by an admin")
    page.get_by_role("button", name="Save changes").click()
    expect(console.flash).to_contain_text("version 2")
    saved = server.gql(admin, WEBHOOK, {"id": some_id}).ok()["webhook"]
    assert (saved["name"], saved["headers"], saved["targetUrl"]) == ("Renamed by an admin", headers, some_url)
    console.sign_out()

    # A publisher sees the event types, and publishes.
    console.sign_in(server.key(org, "publisher"))
    expect(page.get_by_role("heading", level=1, name="Event types")).to_be_visible()
    expect(nav.get_by_role("link")).to_have_text(["Event types"])
    expect(page.get_by_role("button", name="Define event type")).to_have_count(0)
    page.get_by_label("Type", exact=True).fill("ticket.created")
    page.get_by_role("button", name="Use the sample payload").click()
    page.get_by_label("Idempotency key").fill("ticket-1")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_text("Published event")).to_be_visible()
    wait_until(lambda: server.gql(admin, DELIVERIES, {}).ok()["deliveries"]["totalCount"] == 6)
    console.shot("14-publisher-event-types")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_text("Already published with this idempotency key")).to_be_visible()

    assert console.errors == []


HEALTH = "query($id: ID!) { webhook(id: $id) { health { attempts failures consecutiveFailures } } }"


def test_the_webhook_list_shows_each_webhooks_health(
    console: Console, server: Server, receiver: Receiver
) -> None:
    page = console.page
    admin = server.key("console-health", "admin")
    receiver.respond = lambda r: (500, {}, "down") if r.path == "/failing" else (200, {}, "ok")

    def create(path: str, name: str, event_type: str) -> str:
        given = webhook_input(receiver.url + path, name=name, eventTypes=[event_type])
        created: str = server.gql(admin, CREATE_WEBHOOK, {"input": given}).ok()["createWebhook"]["id"]
        return created

    healthy = create("/ok", "Healthy target", "alert.activated")
    failing = create("/failing", "Failing target", "alert.activated")
    create("/quiet", "Quiet target", "other.type")
    publisher = server.key("console-health", "publisher")
    server.gql(publisher, PUBLISH, {"input": {"type": "alert.activated", "payload": {"n": 1}}}).ok()

    def seen(webhook_id: str) -> dict[str, int]:
        found: dict[str, int] = server.gql(admin, HEALTH, {"id": webhook_id}).ok()["webhook"]["health"]
        return found

    wait_until(
        lambda: seen(healthy)["attempts"] == 1 and seen(failing)["consecutiveFailures"] >= 2, timeout=20
    )

    console.sign_in(admin)
    rows = page.locator("tr[data-webhook]")
    expect(rows.filter(has_text="Healthy target")).to_contain_text("100% succeeded")
    expect(rows.filter(has_text="Healthy target")).not_to_contain_text("Failing")
    expect(rows.filter(has_text="Failing target")).to_contain_text("0% succeeded")
    expect(rows.filter(has_text="Failing target")).to_contain_text(re.compile(r"Failing: \d+ in a row"))
    expect(rows.filter(has_text="Quiet target").locator(".health-cell")).to_have_text("—")
    console.shot("15-webhook-health")

    # The failing webhook's overview: its health panel, with what the target answered.
    rows.filter(has_text="Failing target").get_by_role("link", name="Failing target").click()
    panel = page.get_by_test_id("health")
    expect(panel.get_by_role("heading", name="Health (last 24 hours)")).to_be_visible()
    expect(panel.locator("dd").nth(1)).to_have_text("0%")
    expect(panel.locator('[data-status="500"]')).to_contain_text(re.compile(r"500: \d+"))
    expect(panel).to_contain_text(re.compile(r"\d+ failed attempts in a row"))
    console.shot("16-webhook-health-panel")


def test_an_admin_adds_mtls_and_oauth2_credentials_and_sees_a_pem_problem_at_its_field(
    console: Console, server: Server
) -> None:
    page = console.page
    admin = server.key("console-egress", "admin")
    authority = Authority.create("Console CA")
    client, other = authority.client("console-client"), authority.client("someone-else")
    console.sign_in(admin)
    console.go("Credentials")

    page.get_by_label("Name", exact=True).fill("ITSM mTLS")
    page.get_by_label("Mutual TLS").check()
    page.get_by_label("Client certificate (PEM)").fill(client.certificate_pem)
    page.get_by_label("Private key (PEM, unencrypted)").fill(other.private_key_pem)
    page.get_by_role("button", name="Create credential").click()
    expect(page.locator('[data-field="privateKeyPem"] .field-error')).to_contain_text("does not match")
    page.get_by_label("Private key (PEM, unencrypted)").fill(client.private_key_pem)
    page.get_by_label("Private CA bundle (PEM, optional)").fill(authority.pem)
    page.get_by_role("button", name="Create credential").click()
    expect(console.flash).to_contain_text("Created credential “ITSM mTLS”")
    expect(page.locator("tr", has_text="ITSM mTLS")).to_contain_text("Mutual TLS")

    client_secret = "console-client-secret-42"
    page.get_by_label("Name", exact=True).fill("ITSM OAuth2")
    page.get_by_label("OAuth2 client credentials").check()
    page.get_by_label("Token URL").fill("https://login.example.com/oauth2/token")
    page.get_by_label("Client id").fill("hookline")
    page.get_by_label("Client secret").fill(client_secret)
    page.get_by_label("Scope (optional)").fill("incidents.write")
    assert_labelled(page)
    console.shot("02b-credential-oauth2")
    page.get_by_role("button", name="Create credential").click()
    expect(console.flash).to_contain_text("Created credential “ITSM OAuth2”")
    row = page.locator("tr", has_text="ITSM OAuth2")
    expect(row).to_contain_text("OAuth2 client credentials")
    expect(row).to_contain_text("••••42")
    expect(page.locator("main")).not_to_contain_text(client_secret)
    stored = server.gql(admin, "{ credentials { name kind } }").ok()["credentials"]
    assert {(c["name"], c["kind"]) for c in stored} == {
        ("ITSM mTLS", "MTLS"),
        ("ITSM OAuth2", "OAUTH2_CLIENT_CREDENTIALS"),
    }
    assert console.errors == []
