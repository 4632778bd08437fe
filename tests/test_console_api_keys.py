"""The console's "API keys" page in a real browser (Debian's Chromium through Playwright) against a real
`hookline serve`: an admin creates a key, sees it once and copies it, and revokes one after confirming;
other roles have no such page. The console learns who the key is from `me`."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.support import Server, wait_until
from tests.test_console import (  # noqa: F401 - the browser and the server are test_console's fixtures
    Console,
    browser,
    console,
    field_,
    server,
)

ME = "{ me { role organizationName } }"
LAST_USED = "{ apiKeys { id lastUsedAt } }"


def key_id(key: str) -> str:
    return str(uuid.UUID(key.split("_")[1]))


def last_used(hookline: Server, admin: str, id_: str) -> str | None:
    keys: dict[str, str | None] = {
        k["id"]: k["lastUsedAt"] for k in hookline.gql(admin, LAST_USED).ok()["apiKeys"]
    }
    return keys[id_]


def test_an_admin_creates_copies_and_revokes_api_keys_in_the_console(
    console: Console,  # noqa: F811 - test_console's fixture
    server: Server,  # noqa: F811 - test_console's fixture
) -> None:
    page, main = console.page, console.page.locator("main")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    org = "console-keys"
    admin = server.key(org, "admin")

    console.sign_in(admin)
    expect(page.get_by_test_id("identity")).to_have_text(re.compile(f"{org}.*admin"))
    console.go("API keys")
    own = page.locator(f'tr[data-api-key="{key_id(admin)}"]')
    expect(own).to_contain_text("this session's key")
    expect(own).to_contain_text("Admin")
    expect(own).to_contain_text("Active")
    expect(page.get_by_role("button", name="Create API key")).to_be_visible()

    # A name the server refuses: its problem next to the field.
    page.get_by_label("Name", exact=True).fill("n" * 101)
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator('[data-field="name"] .field-error')).to_contain_text("at most 100 characters")
    expect(field_(page, "name")).to_have_attribute("aria-invalid", "true")
    console.shot("40-api-keys-problem")

    # A new key, shown once, copied with the button; it works at once.
    page.get_by_label("Name", exact=True).fill("ServiceNow publisher")
    page.get_by_label("Role").select_option("PUBLISHER")
    page.get_by_role("button", name="Create API key").click()
    shown = page.get_by_label("Key", exact=True)
    expect(shown).to_have_value(re.compile(r"^hkl_"))
    key = shown.input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    console.shot("41-api-key-created")
    assert server.gql(key, ME).ok()["me"] == {"role": "PUBLISHER", "organizationName": org}
    made = page.locator(f'tr[data-api-key="{key_id(key)}"]')
    expect(made).to_contain_text("ServiceNow publisher")
    expect(made).to_contain_text("Publisher")
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_label("Key", exact=True)).to_have_count(0)
    expect(main).not_to_contain_text(key)
    page.reload()
    expect(made).to_be_visible()
    assert key not in page.content(), "a key is shown once, when it is created"

    # Its first use shows as its last use.
    wait_until(lambda: last_used(server, admin, key_id(key)))
    page.reload()
    expect(made.locator("td").nth(3)).not_to_have_text("Never")

    # Revoking asks first; cancelled, nothing changes.
    made.get_by_role("button", name="Revoke ServiceNow publisher").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("This cannot be undone")
    console.shot("42-api-key-revoke", full_page=False)
    dialog.get_by_role("button", name="Cancel").click()
    expect(made).to_contain_text("Active")
    made.get_by_role("button", name="Revoke ServiceNow publisher").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(made).to_contain_text("Revoked")
    expect(made.get_by_role("button")).to_have_count(0)
    wait_until(lambda: server.gql(key, ME).codes == ["UNAUTHENTICATED"], 5.0, 0.1)
    console.shot("43-api-keys")
    console.sign_out()

    # Other roles have no such page.
    console.sign_in(server.key(org, "auditor"))
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys")).to_have_count(0)
    page.goto(f"{server.url}/#/api-keys")
    expect(main).to_contain_text("The auditor role cannot open this page.")
    assert console.errors == []
