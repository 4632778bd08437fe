"""The audit plane through a real `hookline serve`: history, the hash-chained audit log, its export and
offline check, tamper detection in the store, live delivery status over a websocket, operations."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import sqlite3
import time
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.queries import (
    CREATE_WEBHOOK,
    DELETE_WEBHOOK,
    DELIVERIES,
    PUBLISH,
    ROTATE,
    UPDATE_WEBHOOK,
    WEBHOOK_FIELDS,
    webhook_input,
)
from tests.support import Receiver, Server, wait_until

GENESIS = "0" * 64
RECORD_FIELDS = (
    "position",
    "organizationId",
    "aggregateId",
    "aggregateType",
    "version",
    "eventType",
    "recordedAt",
    "actor",
    "data",
    "dataHash",
    "erased",
)
CHAINED_FIELDS = tuple(name for name in RECORD_FIELDS if name not in ("data", "erased"))
AUDIT_LOG = f"""
query($aggregateId: ID, $first: Int, $after: String) {{
  auditLog(aggregateId: $aggregateId, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {" ".join(RECORD_FIELDS)} hash previousHash }} }}
  }}
}}
"""
VERIFY = "query { verifyAuditLog { valid checked firstInvalidPosition } }"
AS_OF = f"""
query($id: ID!, $version: Int, $at: DateTime) {{
  webhookAsOf(id: $id, version: $version, at: $at) {{ {WEBHOOK_FIELDS} }}
}}
"""
SUBSCRIBE = """
subscription($webhookId: ID, $after: String) {
  deliveryUpdates(webhookId: $webhookId, after: $after) {
    cursor deliveryId webhookId eventId status attempt statusCode at
  }
}
"""
KEY = re.compile(r"^hkl_([0-9a-f]{32})_(.+)$")


# -- helpers -----------------------------------------------------------------------------------------


def key_id(key: str) -> str:
    """The id of an API key `hkl_<32 hex>_<secret>`: the UUID of the 32 hex digits."""
    match = KEY.match(key)
    assert match, key
    return str(uuid.UUID(match.group(1)))


def key_secret(key: str) -> str:
    match = KEY.match(key)
    assert match, key
    return match.group(2)


def secret_forms(signing_secret: str) -> list[str]:
    assert signing_secret.startswith("whsec_"), signing_secret
    return [signing_secret, signing_secret.removeprefix("whsec_")]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def expected_hash(node: dict[str, Any]) -> str:
    """The contract's rule, computed here independently: sha256(previousHash + canonical JSON of the
    record without hash, previousHash, data and erased)."""
    record = {name: node[name] for name in CHAINED_FIELDS}
    return hashlib.sha256((node["previousHash"] + canonical_json(record)).encode("utf-8")).hexdigest()


def expected_data_hash(node: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(node["data"]).encode("utf-8")).hexdigest()


def audit_log(
    server: Server, key: str, aggregate_id: str | None = None, page: int = 100
) -> list[dict[str, Any]]:
    """Every record the key's organisation may read (of one aggregate if given), paging with first/after."""
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(1000):
        variables = {"aggregateId": aggregate_id, "first": page, "after": after}
        connection = server.gql(key, AUDIT_LOG, variables).ok()["auditLog"]
        nodes.extend(edge["node"] for edge in connection["edges"])
        assert len(connection["edges"]) <= page
        if not connection["pageInfo"]["hasNextPage"]:
            assert len(nodes) == connection["totalCount"], (len(nodes), connection["totalCount"])
            return nodes
        after = connection["pageInfo"]["endCursor"]
        assert after, connection
    raise AssertionError("auditLog never reached its last page")


def verify(server: Server, key: str) -> dict[str, Any]:
    result: dict[str, Any] = server.gql(key, VERIFY).ok()["verifyAuditLog"]
    return result


def create_webhook(server: Server, key: str, target: str, **overrides: object) -> dict[str, Any]:
    created: dict[str, Any] = server.gql(
        key, CREATE_WEBHOOK, {"input": webhook_input(target, **overrides)}
    ).ok()["createWebhook"]
    return created


def publish(server: Server, key: str, event_type: str = "alert.activated", **payload: object) -> str:
    published = server.gql(key, PUBLISH, {"input": {"type": event_type, "payload": payload}}).ok()
    event_id: str = published["publishEvent"]["eventId"]
    return event_id


def succeeded_deliveries(server: Server, key: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        edges = server.gql(key, DELIVERIES, {"status": "SUCCEEDED", "first": 100}).ok()["deliveries"]["edges"]
        return [edge["node"] for edge in edges] if len(edges) >= count else None

    found: list[dict[str, Any]] = wait_until(done, timeout)
    return found


def http_get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


def record_lines(lines: list[str]) -> list[str]:
    """An export's record lines, without the signed checkpoints that end it."""
    return [line for line in lines if "checkpoint" not in json.loads(line)]


def line_named(stderr: str, number: int) -> bool:
    return re.search(rf"\bline {number}\b", stderr) is not None


# -- 1. history ----------------------------------------------------------------------------------------


def test_webhook_as_of_returns_every_version_even_after_deletion(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    auditor = open_server.key(org, "auditor")
    viewer = open_server.key(org, "viewer")
    stranger = open_server.key(f"{org}-other", "admin")
    names = [f"History {uuid.uuid4().hex[:8]} v{n}" for n in (1, 2, 3)]

    created = create_webhook(open_server, admin, "http://127.0.0.1:9/history", name=names[0])
    webhook_id = created["id"]
    assert created["version"] == 1
    time.sleep(0.05)
    second = open_server.gql(admin, UPDATE_WEBHOOK, {"id": webhook_id, "input": {"name": names[1]}}).ok()[
        "updateWebhook"
    ]
    assert second["version"] == 2
    time.sleep(0.05)
    third = open_server.gql(admin, UPDATE_WEBHOOK, {"id": webhook_id, "input": {"name": names[2]}}).ok()[
        "updateWebhook"
    ]
    assert third["version"] == 3
    assert open_server.gql(admin, DELETE_WEBHOOK, {"id": webhook_id}).ok()["deleteWebhook"] is True

    for version, name in enumerate(names, start=1):
        found = open_server.gql(admin, AS_OF, {"id": webhook_id, "version": version}).ok()["webhookAsOf"]
        assert found is not None, version
        assert (found["id"], found["name"], found["version"]) == (webhook_id, name, version)

    between = (
        datetime.fromisoformat(second["updatedAt"])
        + (datetime.fromisoformat(third["updatedAt"]) - datetime.fromisoformat(second["updatedAt"])) / 2
    )
    at_between = open_server.gql(admin, AS_OF, {"id": webhook_id, "at": between.isoformat()}).ok()[
        "webhookAsOf"
    ]
    assert at_between is not None
    assert (at_between["name"], at_between["version"]) == (names[1], 2)

    before = datetime.fromisoformat(created["createdAt"]) - timedelta(hours=1)
    assert (
        open_server.gql(admin, AS_OF, {"id": webhook_id, "at": before.isoformat()}).ok()["webhookAsOf"]
        is None
    )

    both = open_server.gql(admin, AS_OF, {"id": webhook_id, "version": 1, "at": between.isoformat()})
    assert both.codes == ["BAD_USER_INPUT"], both
    neither = open_server.gql(admin, AS_OF, {"id": webhook_id})
    assert neither.codes == ["BAD_USER_INPUT"], neither

    for variables in ({"id": webhook_id, "version": 2}, {"id": webhook_id, "at": between.isoformat()}):
        assert open_server.gql(stranger, AS_OF, variables).ok()["webhookAsOf"] is None, variables

    for role_key in (auditor, viewer):
        found = open_server.gql(role_key, AS_OF, {"id": webhook_id, "version": 2}).ok()["webhookAsOf"]
        assert found is not None
        assert (found["name"], found["version"], found["signingSecret"]) == (names[1], 2, None)


# -- 2. the audit log ----------------------------------------------------------------------------------


def test_audit_log_records_each_change_by_its_actor_without_secrets(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = create_webhook(open_server, admin, "http://127.0.0.1:9/audit", name=f"Audited {org}")
    webhook_id = created["id"]
    for name in (f"Audited {org} again", f"Audited {org} thrice"):
        open_server.gql(admin, UPDATE_WEBHOOK, {"id": webhook_id, "input": {"name": name}}).ok()
    open_server.gql(admin, DELETE_WEBHOOK, {"id": webhook_id}).ok()

    answer = open_server.gql(admin, AUDIT_LOG, {"aggregateId": webhook_id})
    records = [edge["node"] for edge in answer.ok()["auditLog"]["edges"]]
    assert [r["eventType"] for r in records] == [
        "Webhook.Created",
        "Webhook.Updated",
        "Webhook.Updated",
        "Webhook.Deleted",
    ]
    assert [r["version"] for r in records] == [1, 2, 3, 4]
    positions = [r["position"] for r in records]
    assert positions == sorted(set(positions)), positions
    assert {r["aggregateId"] for r in records} == {webhook_id}
    assert {r["aggregateType"] for r in records} == {"Webhook"}
    assert {r["actor"] for r in records} == {key_id(admin)}

    text = json.dumps(answer)
    for form in secret_forms(created["signingSecret"]):
        assert form not in text
    assert admin not in text
    assert key_secret(admin) not in text


def test_a_rotated_signing_secret_never_appears_in_the_audit_log(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = create_webhook(open_server, admin, "http://127.0.0.1:9/rotated")
    rotated = open_server.gql(admin, ROTATE, {"id": created["id"]}).ok()["rotateSigningSecret"]
    assert rotated["signingSecret"] != created["signingSecret"]

    answer = open_server.gql(admin, AUDIT_LOG, {"aggregateId": created["id"]})
    assert [edge["node"]["eventType"] for edge in answer.ok()["auditLog"]["edges"]] == [
        "Webhook.Created",
        "Webhook.SigningSecretRotated",
    ]
    text = json.dumps(answer)
    leaks = [
        f"{label} secret ({form})"
        for label, secret in (("first", created["signingSecret"]), ("rotated", rotated["signingSecret"]))
        for form in secret_forms(secret)
        if form in text
    ]
    assert leaks == []


def test_audit_log_is_a_hash_chain_that_includes_deliveries_and_verifies(
    open_server: Server, org: str, receiver: Receiver
) -> None:
    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    auditor = open_server.key(org, "auditor")
    viewer = open_server.key(org, "viewer")
    created = create_webhook(open_server, admin, receiver.url + "/chain")
    # non-ASCII stays as it is in the canonical JSON: the recomputed hash depends on it
    open_server.gql(admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": "Chaîné — Zürich ✓"}}).ok()
    event_id = publish(open_server, publisher, alert_name="Chain")
    (delivery,) = succeeded_deliveries(open_server, admin, 1)

    records = audit_log(open_server, admin, page=3)  # several pages
    assert len(records) >= 8, [r["eventType"] for r in records]
    assert records[0]["previousHash"] == GENESIS
    assert len({r["organizationId"] for r in records}) == 1
    for previous, record in itertools.pairwise(records):
        assert record["position"] > previous["position"], (previous, record)
        assert record["previousHash"] == previous["hash"], record["position"]
    assert any("Zürich" in json.dumps(r["data"], ensure_ascii=False) for r in records)
    for record in records:
        assert re.fullmatch(r"[0-9a-f]{64}", record["hash"]), record
        assert record["hash"] == expected_hash(record), record
        assert record["erased"] is False, record
        assert record["dataHash"] == expected_data_hash(record), record

    by_aggregate = {(r["aggregateId"], r["eventType"]): r for r in records}
    # A delivery that succeeded at once is one record; the fan-out that owed it names its webhook.
    assert [r["eventType"] for r in records if r["aggregateId"] == delivery["id"]] == ["Delivery.Attempted"]
    found = by_aggregate[(delivery["id"], "Delivery.Attempted")]
    assert (found["aggregateType"], found["actor"]) == ("Delivery", "system")
    assert by_aggregate[(event_id, "Event.FannedOut")]["data"]["webhook_ids"] == [created["id"]]
    published = by_aggregate.get((event_id, "Event.Published"))
    assert published is not None
    assert published["actor"] == key_id(publisher)
    assert by_aggregate[(created["id"], "Webhook.Created")]["actor"] == key_id(admin)

    text = json.dumps(records)
    for form in [*secret_forms(created["signingSecret"]), admin, key_secret(admin), key_secret(publisher)]:
        assert form not in text

    assert audit_log(open_server, auditor) == records
    for role_key in (admin, auditor):
        verification = verify(open_server, role_key)
        assert verification["valid"] is True, verification
        assert verification["checked"] >= len(records) > 0, verification
        assert verification["firstInvalidPosition"] is None
    for role_key in (viewer, publisher):
        assert open_server.gql(role_key, AUDIT_LOG, {}).codes == ["FORBIDDEN"]
        assert open_server.gql(role_key, VERIFY).codes == ["FORBIDDEN"]


# -- 3. export and offline verification ----------------------------------------------------------------


def test_audit_export_verifies_offline_and_names_the_tampered_line(
    fresh_server: Server, tmp_path: Path
) -> None:
    server = fresh_server
    ours, theirs = "export-ours", "export-theirs"
    admin = server.key(ours, "admin")
    other = server.key(theirs, "admin")
    our_name, their_name = f"Ours {uuid.uuid4().hex}", f"Theirs {uuid.uuid4().hex}"
    our_hook = create_webhook(server, admin, "http://127.0.0.1:9/ours", name=our_name)
    server.gql(admin, UPDATE_WEBHOOK, {"id": our_hook["id"], "input": {"description": "changed"}}).ok()
    their_hook = create_webhook(server, other, "http://127.0.0.1:9/theirs", name=their_name)
    their_org = audit_log(server, other)[0]["organizationId"]
    # the last mutation of this org comes after every key, so the server has applied all of them by now
    create_webhook(server, admin, "http://127.0.0.1:9/ours-2", name=f"{our_name} 2")
    our_org = audit_log(server, admin)[0]["organizationId"]

    export = tmp_path / "ours.jsonl"
    result = server.cli("audit", "export", "--org", ours, "--out", str(export))
    assert result.returncode == 0, result.stderr
    text = export.read_text(encoding="utf-8")
    lines = record_lines(text.splitlines())
    assert len(lines) >= 5, lines
    assert len(text.splitlines()) == len(lines) + 1  # one organisation: one checkpoint
    entries = [json.loads(line) for line in lines]
    assert {e["organizationId"] for e in entries} == {our_org}
    for foreign in (their_hook["id"], their_name, their_org):
        assert foreign not in text
    assert our_hook["id"] in text
    assert [e["position"] for e in entries] == [r["position"] for r in audit_log(server, admin)]
    assert secret_forms(our_hook["signingSecret"])[1] not in text

    assert server.cli("audit", "verify", str(export)).returncode == 0

    number = next(n for n, line in enumerate(lines, start=1) if our_name in line and n > 1)
    tampered = tmp_path / "tampered.jsonl"
    changed = [
        line.replace(our_name, f"{our_name} (edited)") if n == number else line
        for n, line in enumerate(lines, 1)
    ]
    tampered.write_text("\n".join(changed) + "\n", encoding="utf-8")
    refused = server.cli("audit", "verify", str(tampered))
    assert refused.returncode != 0
    assert line_named(refused.stderr, number), refused.stderr

    shortened = tmp_path / "shortened.jsonl"
    shortened.write_text("\n".join(lines[:2] + lines[3:]) + "\n", encoding="utf-8")
    assert server.cli("audit", "verify", str(shortened)).returncode != 0

    everything = tmp_path / "all.jsonl"
    result = server.cli("audit", "export", "--out", str(everything))
    assert result.returncode == 0, result.stderr
    whole = everything.read_text(encoding="utf-8")
    exported = record_lines(whole.splitlines())
    assert {json.loads(line)["organizationId"] for line in exported} >= {our_org, their_org}
    assert our_hook["id"] in whole
    assert their_hook["id"] in whole
    checked = server.cli("audit", "verify", str(everything))
    assert checked.returncode == 0, checked.stderr


# -- 4. tamper detection in the store ------------------------------------------------------------------


def _store_with_history(server: Server, org: str) -> tuple[str, str, dict[str, Any]]:
    """An organisation with a webhook changed twice; returns its admin key, a bystander's key, the record."""
    admin = server.key(org, "admin")
    bystander = server.key(f"{org}-bystander", "admin")
    create_webhook(server, bystander, "http://127.0.0.1:9/bystander")
    created = create_webhook(server, admin, "http://127.0.0.1:9/tamper")
    for name in ("Tampered once", "Tampered twice"):
        server.gql(admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": name}}).ok()
    assert verify(server, admin)["valid"] is True
    records = audit_log(server, admin, created["id"])
    middle = records[1]
    assert middle["eventType"] == "Webhook.Updated"
    return admin, bystander, middle


def _database(server: Server) -> Path:
    path = server.directory / "var" / "hookline.sqlite3"
    assert path.exists(), sorted(p.name for p in (server.directory / "var").iterdir())
    return path


def _tamper(server: Server, position: int, change: Callable[[bytes], bytes | None]) -> None:
    """With the server stopped, rewrite (or, when `change` gives None, delete) the stored event at a
    position: `stored_events` by rowid in the SQLite file, `hookline_events` by notification_id in
    PostgreSQL."""
    database_url = server.env.get("HOOKLINE_DATABASE_URL", "")
    if database_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as pg:
            row = pg.execute(
                "SELECT state FROM hookline_events WHERE notification_id = %s", (position,)
            ).fetchone()
            assert row is not None, position
            changed = change(bytes(row[0]))
            if changed is None:
                done = pg.execute("DELETE FROM hookline_events WHERE notification_id = %s", (position,))
            else:
                done = pg.execute(
                    "UPDATE hookline_events SET state = %s WHERE notification_id = %s", (changed, position)
                )
            assert done.rowcount == 1
        return
    with closing(sqlite3.connect(_database(server))) as db, db:
        found = db.execute("SELECT state FROM stored_events WHERE rowid = ?", (position,)).fetchone()
        assert found is not None, position
        changed = change(bytes(found[0]))
        if changed is None:
            cursor = db.execute("DELETE FROM stored_events WHERE rowid = ?", (position,))
        else:
            cursor = db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (changed, position))
        assert cursor.rowcount == 1


def _one_byte_changed(state: bytes) -> bytes:
    altered = bytearray(state)
    altered[len(altered) // 2] ^= 0x01
    return bytes(altered)


def test_a_changed_byte_in_a_stored_event_breaks_verification_at_its_position(fresh_server: Server) -> None:
    admin, bystander, record = _store_with_history(fresh_server, "tamper-byte")
    fresh_server.stop()
    _tamper(fresh_server, record["position"], _one_byte_changed)
    fresh_server.start()

    verification = verify(fresh_server, admin)
    assert verification["valid"] is False, verification
    assert verification["firstInvalidPosition"] == record["position"], verification
    assert verify(fresh_server, bystander)["valid"] is True


def test_a_deleted_stored_event_breaks_verification_at_its_position(fresh_server: Server) -> None:
    admin, bystander, record = _store_with_history(fresh_server, "tamper-delete")
    fresh_server.stop()
    _tamper(fresh_server, record["position"], lambda _: None)
    fresh_server.start()

    verification = verify(fresh_server, admin)
    assert verification["valid"] is False, verification
    assert verification["firstInvalidPosition"] == record["position"], verification
    assert verify(fresh_server, bystander)["valid"] is True


# -- 5. live delivery status over a websocket ----------------------------------------------------------


Message = dict[str, Any]


class Live:
    """One graphql-transport-ws connection to the gateway."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, server: Server, payload: object) -> Live:
        url = server.url.replace("http", "ws", 1) + "/graphql"
        ws = await session.ws_connect(
            url, protocols=["graphql-transport-ws"], timeout=aiohttp.ClientWSTimeout(10)
        )
        message: dict[str, object] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await ws.send_json(message)
        return cls(ws)

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, server: Server, key: str) -> Live:
        live = await cls.open(session, server, {"Authorization": f"Bearer {key}"})
        ack = await live.receive(10.0)
        assert ack is not None
        assert ack["type"] == "connection_ack", ack
        return live

    async def receive(self, within: float) -> Message | None:
        """The next protocol message (pings answered), {"type": "closed"} when closed, None on timeout."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                message = await self.ws.receive(timeout=remaining)
            except TimeoutError:
                return None
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return {"type": "closed", "code": self.ws.close_code}
            if message.type == aiohttp.WSMsgType.ERROR:
                return {"type": "closed", "code": self.ws.close_code, "error": str(message.data)}
            data: Message = json.loads(message.data)
            if data.get("type") == "ping":
                await self.ws.send_json({"type": "pong"})
                continue
            if data.get("type") == "pong":
                continue
            return data

    async def subscribe(self, webhook_id: str | None = None, after: str | None = None) -> None:
        variables = {"webhookId": webhook_id, "after": after}
        await self.ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}
        )

    async def updates(self, count: int, within: float = 20.0) -> list[Message]:
        got: list[Message] = []
        deadline = time.monotonic() + within
        while len(got) < count:
            message = await self.receive(deadline - time.monotonic())
            assert message is not None, f"{len(got)} of {count} updates within {within} s: {got}"
            assert message["type"] == "next", message
            assert message["id"] == "1", message
            assert not message["payload"].get("errors"), message
            got.append(message["payload"]["data"]["deliveryUpdates"])
        return got

    async def silence(self, seconds: float) -> list[Message]:
        """Whatever arrives within `seconds` (expected: nothing)."""
        got: list[Message] = []
        deadline = time.monotonic() + seconds
        while (message := await self.receive(deadline - time.monotonic())) is not None:
            got.append(message)
            if message["type"] == "closed":
                break
        return got

    async def close(self) -> None:
        await self.ws.close()


async def gql_async(server: Server, key: str, query: str, variables: dict[str, Any]) -> Any:
    return (await asyncio.to_thread(server.gql, key, query, variables)).ok()


def test_live_delivery_updates_stream_and_resume_after_a_cursor_without_gap_or_repeat(
    open_server: Server, org: str, receiver: Receiver
) -> None:
    admin = open_server.key(org, "admin")
    viewer = open_server.key(org, "viewer")
    publisher = open_server.key(org, "publisher")
    other_admin = open_server.key(f"{org}-other", "admin")
    other_publisher = open_server.key(f"{org}-other", "publisher")
    webhook = create_webhook(open_server, admin, receiver.url + "/live")
    other_webhook = create_webhook(open_server, other_admin, receiver.url + "/live-other")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            live = await Live.connect(session, open_server, viewer)
            stranger = await Live.connect(session, open_server, other_admin)
            await live.subscribe()
            await stranger.subscribe()
            await asyncio.sleep(0.5)  # both subscriptions registered before anything happens
            event_ids = {
                await asyncio.to_thread(publish, open_server, publisher, alert_name=f"live {n}")
                for n in (1, 2)
            }
            updates = await live.updates(4)
            assert await live.silence(1.0) == [], "more than the 4 updates arrived"
            assert await stranger.silence(1.0) == [], "another organisation's updates arrived"
            await live.close()

            assert {u["webhookId"] for u in updates} == {webhook["id"]}
            assert {u["eventId"] for u in updates} == event_ids
            delivery_ids = {u["deliveryId"] for u in updates}
            assert len(delivery_ids) == 2
            for delivery_id in delivery_ids:
                mine = [u for u in updates if u["deliveryId"] == delivery_id]
                assert [(u["status"], u["attempt"], u["statusCode"]) for u in mine] == [
                    ("PENDING", None, None),
                    ("SUCCEEDED", 1, 200),
                ], mine
            cursors = [u["cursor"] for u in updates]
            assert len(set(cursors)) == 4
            listed = await gql_async(open_server, admin, DELIVERIES, {"webhookId": webhook["id"]})
            assert {e["node"]["id"] for e in listed["deliveries"]["edges"]} == delivery_ids

            resumed = await Live.connect(session, open_server, viewer)
            await resumed.subscribe(after=cursors[0])
            again = await resumed.updates(3)
            assert again == updates[1:]
            assert await resumed.silence(1.0) == [], "a resumed subscription repeated or invented updates"
            await resumed.close()

            # the stranger's subscription works: its own organisation's update does arrive
            await asyncio.to_thread(publish, open_server, other_publisher, alert_name="other")
            (theirs,) = await stranger.updates(1)
            assert theirs["webhookId"] == other_webhook["id"]
            await stranger.close()

    asyncio.run(scenario())


def test_live_delivery_updates_filtered_by_webhook_carry_only_that_webhook(
    open_server: Server, org: str, receiver: Receiver
) -> None:
    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    chosen = create_webhook(open_server, admin, receiver.url + "/chosen", eventTypes=["alert.activated"])
    ignored = create_webhook(open_server, admin, receiver.url + "/ignored", eventTypes=["ticket.created"])

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            filtered = await Live.connect(session, open_server, admin)
            everything = await Live.connect(session, open_server, admin)
            await filtered.subscribe(webhook_id=chosen["id"])
            await everything.subscribe()
            await asyncio.sleep(0.5)
            await asyncio.to_thread(publish, open_server, publisher, "ticket.created", title="first")
            await asyncio.to_thread(publish, open_server, publisher, "alert.activated", alert_name="second")
            all_updates = await everything.updates(4)
            assert {u["webhookId"] for u in all_updates} == {chosen["id"], ignored["id"]}
            only = await filtered.updates(2)
            assert {u["webhookId"] for u in only} == {chosen["id"]}
            assert [u["status"] for u in only] == ["PENDING", "SUCCEEDED"]
            assert only == [u for u in all_updates if u["webhookId"] == chosen["id"]]
            assert await filtered.silence(1.0) == []
            await filtered.close()
            await everything.close()

    asyncio.run(scenario())


def test_a_websocket_without_a_valid_key_is_refused(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    wrong = f"hkl_{uuid.uuid4().hex}_{'x' * 43}"
    forged = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")

    async def refused(payload: object) -> Message | None:
        async with aiohttp.ClientSession() as session:
            live = await Live.open(session, open_server, payload)
            reply = await live.receive(10.0)
            if reply is not None and reply["type"] == "connection_ack":  # then at least no data may come
                await live.subscribe(after="0")
                reply = await live.receive(5.0)
            await live.close()
            return reply

    async def scenario() -> None:
        for payload in (
            {"Authorization": f"Bearer {wrong}"},
            {"Authorization": f"Bearer {forged}"},
            {},
            None,
        ):
            reply = await refused(payload)
            assert reply is not None, payload
            assert reply["type"] in ("closed", "error"), (payload, reply)
            if reply["type"] == "closed":
                assert reply["code"] == 4403, (payload, reply)

        async with aiohttp.ClientSession() as session:  # the right key is accepted on the same route
            live = await Live.connect(session, open_server, admin)
            await live.close()

    asyncio.run(scenario())


# -- 6. operations -------------------------------------------------------------------------------------


def metric_values(text: str, name: str) -> list[float]:
    pattern = re.compile(rf"^{re.escape(name)}(?:\s|$)")
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if pattern.match(line)]


def test_health_readiness_and_metrics(open_server: Server, org: str, receiver: Receiver) -> None:
    assert http_get(open_server.url + "/healthz")[0] == 200
    status, _, body = http_get(open_server.url + "/readyz")
    assert (status, body.strip()) == (200, "ready")

    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    webhook = create_webhook(open_server, admin, receiver.url + "/metrics")

    succeeded = 'hookline_deliveries_finished_total{status="SUCCEEDED"}'
    status, content_type, before = http_get(open_server.url + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain"), content_type
    for name in (
        "hookline_events_published_total",
        "hookline_attempt_duration_seconds_bucket",
        "hookline_queue_depth",
        "hookline_projection_lag",
    ):
        assert re.search(rf"^{re.escape(name)}[{{ ]", before, re.MULTILINE), name
    assert "# TYPE hookline_attempt_duration_seconds histogram" in before
    published_before = sum(metric_values(before, "hookline_events_published_total"))
    succeeded_before = sum(metric_values(before, succeeded))

    publish(open_server, publisher, alert_name="metrics")
    receiver.wait_for(1)
    succeeded_deliveries(open_server, admin, 1)

    def counted() -> str | None:
        text = http_get(open_server.url + "/metrics")[2]
        return text if sum(metric_values(text, succeeded)) >= succeeded_before + 1 else None

    after = wait_until(counted, timeout=10)
    assert sum(metric_values(after, succeeded)) >= 1
    assert sum(metric_values(after, "hookline_events_published_total")) >= published_before + 1
    assert metric_values(after, "hookline_queue_depth"), after
    assert metric_values(after, "hookline_projection_lag"), after

    secrets = [
        admin,
        key_secret(admin),
        publisher,
        key_secret(publisher),
        *secret_forms(webhook["signingSecret"]),
    ]
    leaks = [line for line in after.splitlines() for secret in secrets if secret in line]
    assert leaks == []
