"""The console's organisation settings page in a real browser (Debian's Chromium through Playwright)
against a real `hookline serve`: an admin sets the retention policy, with each refused duration shown
next to its field; an auditor reads it and cannot change it; viewers and publishers have no such page."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.support import Server
from tests.test_console import (  # noqa: F401 - the browser and the server are test_console's fixtures
    Console,
    browser,
    console,
    field_,
    server,
)

POLICY = "{ retentionPolicy { payloads deliveries } }"


def problem(page: Page, name: str) -> Locator:
    """The message shown next to the field a server problem names."""
    return page.locator(f'[data-field="{name}"] .field-error')


def test_an_admin_sets_the_retention_policy_and_an_auditor_reads_it_in_the_console(
    console: Console,  # noqa: F811 - test_console's fixture
    server: Server,  # noqa: F811 - test_console's fixture
) -> None:
    page, main = console.page, console.page.locator("main")
    org = "console-settings"
    admin = server.key(org, "admin")

    console.sign_in(admin)
    console.go("Settings")
    payloads, deliveries = page.get_by_label("Payloads"), page.get_by_label("Deliveries")
    expect(payloads).to_have_value("")
    expect(main).to_contain_text("the sweep that applies it is not running yet")

    # Both durations refused at once, each next to its field.
    payloads.fill("P1M")
    deliveries.fill("soon")
    page.get_by_role("button", name="Save retention policy").click()
    expect(problem(page, "payloads")).to_contain_text("months and years are not accepted")
    expect(problem(page, "deliveries")).to_contain_text("ISO 8601 duration")
    expect(field_(page, "payloads")).to_have_attribute("aria-invalid", "true")
    expect(field_(page, "deliveries")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_contain_text("2 problems")
    console.shot("50-retention-problems")

    # Deliveries shorter than payloads: named as deliveries alone.
    payloads.fill("P30D")
    deliveries.fill("P7D")
    page.get_by_role("button", name="Save retention policy").click()
    expect(problem(page, "deliveries")).to_contain_text("at least as long as payloads")
    expect(problem(page, "payloads")).to_be_hidden()
    assert server.gql(admin, POLICY).ok()["retentionPolicy"] == {"payloads": None, "deliveries": None}

    # Saved; an empty field keeps forever.
    deliveries.fill("P90D")
    page.get_by_role("button", name="Save retention policy").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert server.gql(admin, POLICY).ok()["retentionPolicy"] == {"payloads": "P30D", "deliveries": "P90D"}
    page.reload()
    expect(page.get_by_label("Payloads")).to_have_value("P30D")
    page.get_by_label("Deliveries").fill("")
    page.get_by_role("button", name="Save retention policy").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert server.gql(admin, POLICY).ok()["retentionPolicy"] == {"payloads": "P30D", "deliveries": None}
    console.shot("51-retention-saved")
    console.sign_out()

    # An auditor reads it, without a form.
    console.sign_in(server.key(org, "auditor"))
    console.go("Settings")
    policy = page.locator('[data-retention="read-only"]')
    expect(policy.locator('[data-window="payloads"]')).to_contain_text("P30D")
    expect(policy.locator('[data-window="deliveries"]')).to_contain_text("Kept forever")
    expect(main).to_contain_text("Only an admin changes the retention policy.")
    expect(page.get_by_role("button", name="Save retention policy")).to_have_count(0)
    expect(main.locator("input")).to_have_count(0)
    console.shot("52-retention-auditor")
    console.sign_out()

    # Viewers and publishers have no such page.
    for role in ("viewer", "publisher"):
        console.sign_in(server.key(org, role))
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
        page.goto(f"{server.url}/#/settings")
        expect(main).to_contain_text(f"The {role} role cannot open this page.")
        console.sign_out()
    assert console.errors == []
