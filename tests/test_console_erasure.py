"""The console shows an erased response body as "erased on <date>", not as an empty one (Debian's
Chromium through Playwright, against a real `hookline serve` and a receiver on loopback)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.queries import PUBLISH
from tests.support import Receiver, Server
from tests.test_audit_plane import create_webhook
from tests.test_console import (  # noqa: F401 - the browser and the server are test_console's fixtures
    Console,
    browser,
    console,
    server,
)
from tests.test_erasure_api import ERASE, settled

MARKER = "erase-me-console-5e2"


def test_an_erased_response_body_reads_erased_on_its_date_in_the_console(
    console: Console,  # noqa: F811 - test_console's fixture
    server: Server,  # noqa: F811 - test_console's fixture
    receiver: Receiver,
) -> None:
    page = console.page
    admin, publisher = server.key("console-erasure", "admin"), server.key("console-erasure", "publisher")
    receiver.respond = lambda r: (200, {}, f"echo {r.body.decode(errors='replace')}")
    create_webhook(server, admin, receiver.url + "/erased", eventTypes=["job.done"])
    kept_event, erased_event = (
        server.gql(publisher, PUBLISH, {"input": {"type": "job.done", "payload": {"note": note}}}).ok()[
            "publishEvent"
        ]["eventId"]
        for note in ("kept-body", MARKER)
    )
    for event_id in (kept_event, erased_event):
        settled(server, admin, event_id, {"SUCCEEDED"}, 1)
    assert server.gql(admin, ERASE, {"id": erased_event, "reason": "asked to"}).ok()["eraseEvent"] is True

    console.sign_in(admin)
    console.go("Webhooks")
    page.get_by_role("link", name="Incidents to ServiceNow").click()
    page.get_by_role("navigation", name="Webhook").get_by_role("link", name="Deliveries").click()
    rows = page.locator("tr[data-delivery]")
    expect(rows).to_have_count(2)
    for index in range(2):
        rows.nth(index).get_by_role("button", name="Attempts").click()
    details = page.locator("tr.detail:visible")
    expect(details).to_have_count(2)
    expect(page.locator("[data-erased]")).to_have_count(1)
    expect(page.locator("[data-erased]")).to_contain_text("erased on ")
    expect(page.locator("main")).to_contain_text("kept-body")
    expect(page.locator("main")).not_to_contain_text(MARKER)
    console.shot("60-erased-attempt")
    assert console.errors == []
