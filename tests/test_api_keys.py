"""API keys through the API, against a real `hookline serve`: an admin creates a key (shown once), the
key works, the admin revokes it and it is refused over HTTP and on an open socket within 5 s; `me`
answers every role; other organisations' keys are neither listed nor revocable, nor said to exist."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp

from tests.support import Server, wait_until
from tests.test_revoked_sockets import SUBSCRIBE, WITHIN, closed_with, next_message, open_socket

API_KEY_FIELDS = "id name role createdAt lastUsedAt revoked"
ME = "{ me { keyId role organizationId organizationName } }"
API_KEYS = f"{{ apiKeys {{ {API_KEY_FIELDS} }} }}"
CREATE_KEY = f"""
mutation($input: CreateApiKeyInput!) {{ createApiKey(input: $input) {{ key apiKey {{ {API_KEY_FIELDS} }} }} }}
"""
AUDIT = "query($id: ID) { auditLog(aggregateId: $id) { edges { node { eventType actor data } } } }"
REVOKE_KEY = f"mutation($id: ID!) {{ revokeApiKey(id: $id) {{ {API_KEY_FIELDS} }} }}"


def key_id(key: str) -> str:
    return str(uuid.UUID(key.split("_")[1]))


def create_key(server: Server, admin: str, role: str, name: str | None = None) -> dict[str, Any]:
    created: dict[str, Any] = server.gql(admin, CREATE_KEY, {"input": {"name": name, "role": role}}).ok()[
        "createApiKey"
    ]
    return created


def listed(server: Server, admin: str) -> dict[str, dict[str, Any]]:
    return {k["id"]: k for k in server.gql(admin, API_KEYS).ok()["apiKeys"]}


def test_a_key_made_in_the_api_works_until_revoked_then_is_refused_over_http_and_on_its_open_socket(
    open_server: Server, org: str
) -> None:
    admin = open_server.key(org, "admin")
    created = create_key(open_server, admin, "VIEWER", "dashboard")
    key, made = created["key"], created["apiKey"]
    assert key.startswith("hkl_")
    assert made["id"] == key_id(key)
    assert (made["name"], made["role"], made["revoked"], made["lastUsedAt"]) == (
        "dashboard",
        "VIEWER",
        False,
        None,
    )
    assert key not in str(listed(open_server, admin)), "the key is shown once, at creation only"
    assert listed(open_server, admin)[made["id"]]["role"] == "VIEWER"
    me = open_server.gql(key, ME).ok()["me"]
    assert (me["keyId"], me["role"], me["organizationName"]) == (made["id"], "VIEWER", org)
    assert open_server.gql(key, "{ deliveries { totalCount } }").ok()["deliveries"]["totalCount"] == 0

    async def scenario() -> tuple[int | None, float]:
        async with aiohttp.ClientSession() as session:
            ws = await open_socket(session, open_server, key)
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
            assert await next_message(ws, 1.0) is None, "the subscription ended before the key was revoked"
            revoked = await asyncio.to_thread(open_server.gql, admin, REVOKE_KEY, {"id": made["id"]})
            started = time.monotonic()
            assert revoked.ok()["revokeApiKey"]["revoked"] is True
            code = await closed_with(ws, WITHIN)
            return code, time.monotonic() - started

    code, after = asyncio.run(scenario())

    assert code == 4403, f"the socket was not closed with 4403 within {WITHIN} s"
    print(f"socket closed {after:.2f} s after revokeApiKey")
    wait_until(lambda: open_server.gql(key, ME).codes == ["UNAUTHENTICATED"], WITHIN, 0.1)
    assert listed(open_server, admin)[made["id"]]["revoked"] is True
    assert open_server.gql(admin, ME).ok()["me"]["role"] == "ADMIN", "only the revoked key is refused"
    audit = open_server.gql(admin, AUDIT, {"id": made["id"]}).ok()["auditLog"]["edges"]
    records = [(e["node"]["eventType"], e["node"]["actor"]) for e in audit]
    assert records == [("ApiKey.Issued", key_id(admin)), ("ApiKey.Revoked", key_id(admin))]
    assert audit[0]["node"]["data"]["name"] == "dashboard"
    assert audit[0]["node"]["data"]["key_hash"] == "[redacted]"


def test_last_used_at_shows_a_keys_first_use_and_then_moves_at_most_once_a_minute(
    open_server: Server, org: str
) -> None:
    admin = open_server.key(org, "admin")
    made = create_key(open_server, admin, "PUBLISHER", "source")
    key, id_ = made["key"], made["apiKey"]["id"]
    assert listed(open_server, admin)[id_]["lastUsedAt"] is None

    open_server.gql(key, ME).ok()
    first = wait_until(lambda: listed(open_server, admin)[id_]["lastUsedAt"], 5.0, 0.2)
    for _ in range(10):  # used again and again for the next few seconds
        open_server.gql(key, ME).ok()
        time.sleep(0.3)

    assert listed(open_server, admin)[id_]["lastUsedAt"] == first
    assert first >= made["apiKey"]["createdAt"]


def test_me_answers_every_role_with_its_organisation(open_server: Server, org: str) -> None:
    for role in ("admin", "publisher", "auditor", "viewer"):
        me = open_server.gql(open_server.key(org, role), ME).ok()["me"]
        assert (me["role"], me["organizationName"]) == (role.upper(), org)
    assert open_server.gql(None, ME).codes == ["UNAUTHENTICATED"]


def test_only_an_admin_lists_creates_and_revokes_keys(open_server: Server, org: str) -> None:
    target = key_id(open_server.key(org, "viewer"))
    for role in ("publisher", "auditor", "viewer"):
        key = open_server.key(org, role)
        assert open_server.gql(key, API_KEYS).codes == ["FORBIDDEN"], role
        assert open_server.gql(key, CREATE_KEY, {"input": {"role": "ADMIN"}}).codes == ["FORBIDDEN"], role
        assert open_server.gql(key, REVOKE_KEY, {"id": target}).codes == ["FORBIDDEN"], role
    admin = open_server.key(org, "admin")
    assert listed(open_server, admin)[target]["revoked"] is False


def test_bad_input_is_refused_naming_the_problem(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    before = listed(open_server, admin)

    unknown_role = open_server.gql(admin, CREATE_KEY, {"input": {"role": "OWNER"}})
    too_long = open_server.gql(admin, CREATE_KEY, {"input": {"name": "n" * 101, "role": "ADMIN"}})
    blank = open_server.gql(admin, CREATE_KEY, {"input": {"name": "  ", "role": "ADMIN"}})
    unknown_id = open_server.gql(admin, REVOKE_KEY, {"id": str(uuid.uuid4())})
    not_an_id = open_server.gql(admin, REVOKE_KEY, {"id": "nope"})

    assert unknown_role.codes == ["BAD_USER_INPUT"]
    assert "OWNER" in unknown_role.errors[0]["message"]
    assert "Role" in unknown_role.errors[0]["message"]
    assert (too_long.codes, too_long.fields) == (["BAD_USER_INPUT"], ["name"])
    assert "at most 100 characters" in too_long.errors[0]["message"]
    assert (blank.codes, blank.fields) == (["BAD_USER_INPUT"], ["name"])
    assert unknown_id.codes == ["NOT_FOUND"]
    assert not_an_id.codes == ["NOT_FOUND"]
    assert listed(open_server, admin) == before, "nothing was created"


def test_an_admin_cannot_see_or_revoke_another_organisations_keys(open_server: Server, org: str) -> None:
    admin_a = open_server.key(org, "admin")
    admin_b = open_server.key(f"{org}-b", "admin")
    key_b = create_key(open_server, admin_b, "PUBLISHER", "b's source")
    unknown = str(uuid.uuid4())

    seen_by_a = listed(open_server, admin_a)
    theirs = open_server.gql(admin_a, REVOKE_KEY, {"id": key_b["apiKey"]["id"]})
    nobodys = open_server.gql(admin_a, REVOKE_KEY, {"id": unknown})

    assert key_b["apiKey"]["id"] not in seen_by_a
    assert key_id(admin_b) not in seen_by_a
    assert seen_by_a.keys() == {key_id(admin_a)}
    assert theirs.codes == ["NOT_FOUND"]
    assert theirs.errors[0]["message"] == nobodys.errors[0]["message"], "an answer that tells them apart"
    assert open_server.gql(key_b["key"], ME).ok()["me"]["organizationName"] == f"{org}-b"
    assert listed(open_server, admin_b)[key_b["apiKey"]["id"]]["revoked"] is False
