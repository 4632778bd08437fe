"""Secrets in a webhook's plain fields, through a real `hookline serve` in both modes: admins read
secret header values and target URLs as set; viewers and auditors read them masked, in `webhooks`,
`webhook` and `webhookAsOf`; the audit log and its export hold them masked for everyone (the chain is
computed over the masked data, so both still verify); the target receives them as set."""

from __future__ import annotations

import json
import socketserver
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.queries import (
    CREATE_WEBHOOK,
    DELIVERIES,
    DELIVERY,
    PUBLISH,
    UPDATE_WEBHOOK,
    WEBHOOK,
    WEBHOOK_FIELDS,
    WEBHOOKS,
    webhook_input,
)
from tests.support import Receiver, Server, free_port, wait_until

MASKED = "[redacted]"
AS_OF = f"query($id: ID!, $version: Int) {{ webhookAsOf(id: $id, version: $version) {{ {WEBHOOK_FIELDS} }} }}"
AUDIT_LOG = """query($id: ID) { auditLog(aggregateId: $id, first: 100) {
  edges { node { position organizationId aggregateId aggregateType version eventType recordedAt actor data
  hash previousHash } } } }"""
VERIFY = "{ verifyAuditLog { valid checked firstInvalidPosition } }"


class Secrets:
    """A webhook's secrets, fresh for each test: two secret headers, one ordinary, a token in the URL."""

    def __init__(self) -> None:
        self.api_key = f"ak-{uuid.uuid4().hex}"
        self.bearer = f"bt-{uuid.uuid4().hex}"
        self.token = f"qt-{uuid.uuid4().hex}"
        self.all = [self.api_key, self.bearer, self.token]

    def headers(self) -> list[dict[str, str]]:
        return [
            {"name": "X-Api-Key", "value": self.api_key},
            {"name": "Authorization", "value": f"Bearer {self.bearer}"},
            {"name": "X-Team", "value": "ops"},
        ]

    @staticmethod
    def masked_headers() -> list[dict[str, str]]:
        return [
            {"name": "X-Api-Key", "value": MASKED},
            {"name": "Authorization", "value": MASKED},
            {"name": "X-Team", "value": "ops"},
        ]

    def target(self, base: str) -> str:
        return f"{base}/hooks/in?token={self.token}&channel=ops"

    @staticmethod
    def masked_target(base: str) -> str:
        return f"{base}/hooks/in?token={MASKED}&channel={MASKED}"

    def leaked(self, answer: Any) -> list[str]:
        text = json.dumps(answer)
        return [secret for secret in self.all if secret in text]


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


def keys(server: Server, org: str) -> dict[str, str]:
    return {role: server.key(org, role) for role in ("admin", "auditor", "viewer")}


def create(server: Server, admin: str, secrets: Secrets, base: str, **overrides: object) -> dict[str, Any]:
    variables = {"input": webhook_input(secrets.target(base), headers=secrets.headers(), **overrides)}
    created: dict[str, Any] = server.gql(admin, CREATE_WEBHOOK, variables).ok()["createWebhook"]
    return created


def assert_as_set(webhook: dict[str, Any], secrets: Secrets, base: str) -> None:
    assert webhook["headers"] == secrets.headers()
    assert webhook["targetUrl"] == secrets.target(base)


def assert_masked(webhook: dict[str, Any], secrets: Secrets, base: str) -> None:
    assert webhook["headers"] == secrets.masked_headers()
    assert webhook["targetUrl"] == secrets.masked_target(base)
    assert secrets.leaked(webhook) == []


def test_the_webhooks_list_masks_secret_headers_and_the_url_query_for_viewers_and_auditors_not_admins(
    open_server: Server, org: str, secrets: Secrets, receiver: Receiver
) -> None:
    by_role = keys(open_server, org)
    create(open_server, by_role["admin"], secrets, receiver.url)
    listed = {
        role: open_server.gql(key, WEBHOOKS, {}).ok()["webhooks"]["edges"][0]["node"]
        for role, key in by_role.items()
    }
    assert_as_set(listed["admin"], secrets, receiver.url)
    for role in ("viewer", "auditor"):
        assert_masked(listed[role], secrets, receiver.url)


def test_one_webhook_reads_masked_for_viewers_and_auditors_while_admins_and_the_target_get_it_as_set(
    open_server: Server, org: str, secrets: Secrets, receiver: Receiver
) -> None:
    by_role = keys(open_server, org)
    created = create(open_server, by_role["admin"], secrets, receiver.url)
    assert_as_set(created, secrets, receiver.url)  # the admin's own answer
    read = {
        role: open_server.gql(key, WEBHOOK, {"id": created["id"]}).ok()["webhook"]
        for role, key in by_role.items()
    }
    assert_as_set(read["admin"], secrets, receiver.url)
    for role in ("viewer", "auditor"):
        assert_masked(read[role], secrets, receiver.url)

    publisher = open_server.key(org, "publisher")
    open_server.gql(publisher, PUBLISH, {"input": {"type": "alert.activated", "payload": {"a": 1}}}).ok()
    (received,) = receiver.wait_for(1)
    assert received.path == f"/hooks/in?token={secrets.token}&channel=ops"
    assert received.headers["X-Api-Key"] == secrets.api_key
    assert received.headers["Authorization"] == f"Bearer {secrets.bearer}"
    assert received.headers["X-Team"] == "ops"


def test_a_past_version_read_with_webhook_as_of_is_masked_for_viewers_and_auditors_and_as_set_for_admins(
    open_server: Server, org: str, secrets: Secrets, receiver: Receiver
) -> None:
    by_role = keys(open_server, org)
    created = create(open_server, by_role["admin"], secrets, receiver.url)
    later = Secrets()  # the secrets are changed since: version 1 still held the first ones
    change = {"headers": later.headers(), "targetUrl": later.target(receiver.url)}
    open_server.gql(by_role["admin"], UPDATE_WEBHOOK, {"id": created["id"], "input": change}).ok()
    first = {
        role: open_server.gql(key, AS_OF, {"id": created["id"], "version": 1}).ok()["webhookAsOf"]
        for role, key in by_role.items()
    }
    assert_as_set(first["admin"], secrets, receiver.url)
    for role in ("viewer", "auditor"):
        assert_masked(first[role], secrets, receiver.url)


def test_the_audit_log_holds_secret_headers_and_url_queries_masked_for_every_role_and_still_verifies(
    open_server: Server, org: str, secrets: Secrets, receiver: Receiver
) -> None:
    by_role = keys(open_server, org)
    created = create(open_server, by_role["admin"], secrets, receiver.url)
    later = Secrets()
    change = {"headers": later.headers(), "targetUrl": later.target(receiver.url)}
    open_server.gql(by_role["admin"], UPDATE_WEBHOOK, {"id": created["id"], "input": change}).ok()

    for role in ("admin", "auditor"):
        answer = open_server.gql(by_role[role], AUDIT_LOG, {"id": created["id"]}).ok()
        records = [edge["node"] for edge in answer["auditLog"]["edges"]]
        assert [r["eventType"] for r in records] == ["Webhook.Created", "Webhook.Updated"]
        assert secrets.leaked(answer) == [], role
        assert later.leaked(answer) == [], role
        spec, changes = records[0]["data"]["spec"], records[1]["data"]["changes"]
        assert spec["headers"] == secrets.masked_headers()
        assert spec["target_url"] == secrets.masked_target(receiver.url)
        assert changes["headers"] == later.masked_headers()
        assert changes["target_url"] == later.masked_target(receiver.url)
        verification = open_server.gql(by_role[role], VERIFY).ok()["verifyAuditLog"]
        assert verification["valid"] is True, verification
    assert open_server.gql(by_role["viewer"], AUDIT_LOG, {}).codes == ["FORBIDDEN"]


def test_an_audit_export_holds_secret_headers_and_url_queries_masked_and_verifies_offline(
    open_server: Server, org: str, secrets: Secrets, receiver: Receiver, tmp_path: Path
) -> None:
    admin = open_server.key(org, "admin")
    created = create(open_server, admin, secrets, receiver.url)
    open_server.gql(admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": "Changed"}}).ok()
    export = tmp_path / "export.jsonl"
    done = open_server.cli("audit", "export", "--org", org, "--out", str(export))
    assert done.returncode == 0, done.stderr
    text = export.read_text(encoding="utf-8")
    assert created["id"] in text
    assert secrets.leaked(text) == []
    (spec,) = [
        entry["data"]["spec"]
        for entry in map(json.loads, text.splitlines())
        if "checkpoint" not in entry  # the signed checkpoints that end the export
        and entry["eventType"] == "Webhook.Created"
        and entry["aggregateId"] == created["id"]
    ]
    assert spec["headers"] == secrets.masked_headers()
    assert spec["target_url"] == secrets.masked_target(receiver.url)
    checked = open_server.cli("audit", "verify", str(export))
    assert checked.returncode == 0, checked.stderr


def test_a_slack_incoming_webhook_url_shows_viewers_only_its_first_path_segment(
    open_server: Server, org: str
) -> None:
    by_role = keys(open_server, org)
    secret = uuid.uuid4().hex
    url = f"https://hooks.slack.com/services/T0123ABCD/B0123ABCD/{secret}"
    created = open_server.gql(by_role["admin"], CREATE_WEBHOOK, {"input": webhook_input(url)}).ok()
    webhook_id = created["createWebhook"]["id"]
    read = {
        role: open_server.gql(key, WEBHOOK, {"id": webhook_id}).ok()["webhook"]
        for role, key in by_role.items()
    }
    assert read["admin"]["targetUrl"] == url
    for role in ("viewer", "auditor"):
        assert read[role]["targetUrl"] == f"https://hooks.slack.com/services/{MASKED}"
    records = open_server.gql(by_role["auditor"], AUDIT_LOG, {"id": webhook_id}).ok()
    assert secret not in json.dumps(records)


class _Malformed(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(b"HTTP/1.1 200 OK\r\nNot A Header\r\n\r\n")


@pytest.fixture
def malformed_target() -> Iterator[str]:
    """A target whose answer the HTTP client cannot parse (its error text names the URL it sent to)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), _Malformed)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_attempt_error_that_names_the_target_url_shows_its_query_masked(
    open_server: Server, org: str, secrets: Secrets, malformed_target: str
) -> None:
    by_role = keys(open_server, org)
    publisher = open_server.key(org, "publisher")
    create(open_server, by_role["admin"], secrets, malformed_target)
    open_server.gql(publisher, PUBLISH, {"input": {"type": "alert.activated", "payload": {"a": 1}}}).ok()

    def attempted() -> dict[str, Any] | None:
        edges = open_server.gql(by_role["admin"], DELIVERIES, {}).ok()["deliveries"]["edges"]
        return edges[0]["node"] if edges and edges[0]["node"]["attempts"] else None

    delivery_id = wait_until(attempted)["id"]
    for role, key in by_role.items():
        delivery = open_server.gql(key, DELIVERY, {"id": delivery_id}).ok()["delivery"]
        error = delivery["attempts"][0]["error"]
        assert f"/hooks/in?token={MASKED}&channel={MASKED}" in str(error)  # it still says where it went
        assert secrets.leaked(delivery) == [], role
    answer = open_server.gql(by_role["auditor"], AUDIT_LOG, {}).ok()
    assert secrets.leaked(answer) == []
