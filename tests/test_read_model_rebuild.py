"""The read models kept while serving are those the log rebuilds: the follower applies the events this
process recorded as they were recorded, without decoding them, and must come to what decoding gives."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, WEBHOOKS, webhook_input
from tests.support import Receiver, Server, server_env, wait_until
from tests.test_audit_plane import audit_log, verify

FAILING = "/failing"


def everything(server: Server, key: str) -> dict[str, Any]:
    """What the read models answer: webhooks, deliveries with their attempts, the audit trail."""
    return {
        "webhooks": server.gql(key, WEBHOOKS, {"first": 100}).ok()["webhooks"],
        "deliveries": server.gql(key, DELIVERIES, {"first": 100}).ok()["deliveries"],
        "failed": server.gql(key, DELIVERIES, {"first": 100, "status": "FAILED"}).ok()["deliveries"],
        "audit": audit_log(server, key),
    }


def test_the_read_models_kept_while_serving_equal_those_rebuilt_from_the_log(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.respond = lambda r: (500, {}, "down") if r.path == FAILING else (200, {}, "ok")
    server = Server(
        directory=tmp_path,
        env=server_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true", HOOKLINE_RETRY_SCHEDULE="0.1,0.1"),
    ).start()
    try:
        admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
        major = {"conditions": [{"field": "severity", "operator": "IN", "values": ["major"]}]}
        extras: list[tuple[str, dict[str, Any]]] = [
            ("/all", {}),
            ("/major", {"filters": major}),
            (FAILING, {"headers": [{"name": "X-Team", "value": "ops"}]}),
        ]
        for path, extra in extras:
            server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url + path, **extra)}).ok()
        payloads: list[dict[str, Any]] = [
            {"severity": "major", "ratio": 1e-05, "big": 2**53 + 1, "text": "Störung ✓", "n": [1, 2.5, None]},
            {
                "severity": "minor",
                "nested": {"deep": {"list": [{"a": True}]}},
                "when": "2026-11-24T06:00:00Z",
            },
            {"severity": "major", "empty": {}, "zero": 0.0, "negative": -3},
        ]
        for number, payload in enumerate(payloads):
            server.gql(
                publisher,
                PUBLISH,
                {"input": {"type": "alert.activated", "payload": payload, "idempotencyKey": f"k-{number}"}},
            ).ok()
        repeated = {"type": "alert.activated", "payload": payloads[0], "idempotencyKey": "k-0"}
        assert server.gql(publisher, PUBLISH, {"input": repeated}).ok()["publishEvent"]["duplicate"]

        def settled() -> bool:
            nodes = [
                e["node"] for e in server.gql(admin, DELIVERIES, {"first": 100}).ok()["deliveries"]["edges"]
            ]
            return len(nodes) == 8 and all(n["status"] in ("SUCCEEDED", "FAILED") for n in nodes)

        wait_until(settled, timeout=30)
        kept = everything(server, admin)
        assert verify(server, admin)["valid"]
    finally:
        server.stop()

    with sqlite3.connect(tmp_path / "var" / "hookline.sqlite3") as store:  # next start: rebuilt from the log
        assert store.execute("UPDATE hl_meta SET value = 'stale' WHERE name = 'schema_version'").rowcount == 1
    server.start()
    try:
        rebuilt = everything(server, admin)
        assert verify(server, admin)["valid"]
    finally:
        server.stop()
    assert len(kept["deliveries"]["edges"]) == 8
    assert {e["node"]["status"] for e in kept["deliveries"]["edges"]} == {"SUCCEEDED", "FAILED"}
    assert rebuilt == kept
