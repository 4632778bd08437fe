"""`eraseEvent` through the API on a running Hookline (embedded: SQLite; distributed: PostgreSQL and
Redis): the erased event's bodies read null and `erased`, its neighbour's stay, a delivery still
retrying ends FAILED and is never sent again, `redeliver` is CONFLICT, `replayEvents` skips it, the
audit log shows `Event.Erased` with its actor, and the trail verifies online and offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.queries import PUBLISH
from tests.support import Receiver, Server, wait_until
from tests.test_audit_plane import audit_log, create_webhook, verify

MARKER = "erase-me-b41d"
ATTEMPTS = "attempts { number statusCode responseBody erased }"
OF_EVENT = f"""
query($eventId: ID) {{
  deliveries(eventId: $eventId, first: 10) {{ edges {{ node {{ id status {ATTEMPTS} }} }} }}
}}
"""
ERASE = "mutation($id: ID!, $reason: String!) { eraseEvent(id: $id, reason: $reason) }"


def deliveries_of(server: Server, key: str, event_id: str) -> list[dict[str, Any]]:
    edges = server.gql(key, OF_EVENT, {"eventId": event_id}).ok()["deliveries"]["edges"]
    return sorted((edge["node"] for edge in edges), key=lambda d: d["id"])


def settled(server: Server, key: str, event_id: str, statuses: set[str], count: int) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        found = deliveries_of(server, key, event_id)
        return found if len(found) == count and {d["status"] for d in found} <= statuses else None

    found: list[dict[str, Any]] = wait_until(done, 30)
    return found


def exported_verifies(server: Server, path: Path) -> None:
    assert server.cli("audit", "export", "--out", str(path)).returncode == 0
    key = server.cli("audit", "public-key").stdout.strip()
    verified = server.cli("audit", "verify", str(path), "--public-key", key)
    assert verified.returncode == 0, verified.stderr


def test_erase_event_through_the_api(fresh_server: Server, receiver: Receiver, tmp_path: Path) -> None:
    server = fresh_server
    admin, publisher = server.key("erasure", "admin"), server.key("erasure", "publisher")
    auditor = server.key("erasure", "auditor")
    receiver.respond = lambda r: (
        (500 if r.path.startswith("/retry") else 200),
        {},
        f"echo {r.body.decode(errors='replace')}",
    )
    create_webhook(server, admin, receiver.url + "/ok", eventTypes=["job.done"])
    create_webhook(server, admin, receiver.url + "/retry", eventTypes=["job.done"])

    def publish(payload: dict[str, Any]) -> str:
        published = server.gql(publisher, PUBLISH, {"input": {"type": "job.done", "payload": payload}}).ok()
        return str(published["publishEvent"]["eventId"])

    erased, neighbour = publish({"note": MARKER}), publish({"note": "neighbour"})
    for event_id in (erased, neighbour):
        settled(server, admin, event_id, {"SUCCEEDED", "RETRYING"}, 2)
    exported_verifies(server, tmp_path / "before.jsonl")

    refused = server.gql(admin, ERASE, {"id": erased, "reason": "  "})
    assert (refused.codes, refused.fields) == (["BAD_USER_INPUT"], ["reason"]), refused.errors
    for role_key in (auditor, publisher):
        assert server.gql(role_key, ERASE, {"id": erased, "reason": "x"}).codes == ["FORBIDDEN"]
    other = server.key("erasure-other", "admin")
    assert server.gql(other, ERASE, {"id": erased, "reason": "x"}).codes == ["NOT_FOUND"]

    assert server.gql(admin, ERASE, {"id": erased, "reason": "GDPR request 42"}).ok()["eraseEvent"] is True
    sent_before = len(receiver.requests)  # (a retry may have gone out while the erasure ran)

    after = settled(server, admin, erased, {"SUCCEEDED", "FAILED"}, 2)
    assert {d["status"] for d in after} == {"SUCCEEDED", "FAILED"}  # the retrying one is given up
    for delivery in after:
        assert delivery["attempts"], delivery
        assert all(a["erased"] and a["responseBody"] is None for a in delivery["attempts"]), delivery
        assert MARKER not in str(delivery)
    for delivery in deliveries_of(server, admin, neighbour):
        assert not any(a["erased"] for a in delivery["attempts"])
        assert all("neighbour" in a["responseBody"] for a in delivery["attempts"]), delivery

    redelivered = server.gql(
        admin, "mutation($id: ID!) { redeliver(deliveryId: $id) { id } }", {"id": after[0]["id"]}
    )
    assert redelivered.codes == ["CONFLICT"], redelivered.errors
    assert "erased" in redelivered.errors[0]["message"]

    replaying = create_webhook(server, admin, receiver.url + "/replay", eventTypes=["job.done"])
    replayed = server.gql(
        admin,
        'mutation($id: ID!) { replayEvents(webhookId: $id, from: "2000-01-01T00:00:00Z") }',
        {"id": replaying["id"]},
    ).ok()["replayEvents"]
    assert replayed == 1  # the neighbour alone

    time.sleep(1.0)
    resent = [r.path for r in receiver.requests[sent_before:] if MARKER.encode() in r.body]
    assert resent == [], resent

    records = audit_log(server, admin, erased)
    erasures = [r for r in records if r["eventType"] == "Event.Erased"]
    assert len(erasures) == 1
    assert erasures[0]["data"]["reason"] == "GDPR request 42"
    assert erasures[0]["actor"] not in ("", "system"), erasures[0]  # the admin's key
    published = next(r for r in records if r["eventType"] == "Event.Published")
    assert (published["data"], published["erased"]) == (None, True)
    assert verify(server, admin)["valid"] is True
    exported_verifies(server, tmp_path / "after.jsonl")
    assert MARKER not in (tmp_path / "after.jsonl").read_text(encoding="utf-8")
    assert MARKER in (tmp_path / "before.jsonl").read_text(encoding="utf-8")
