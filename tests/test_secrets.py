"""No secret leaks: signing secrets, credential secrets, API keys and the store's key appear in no log
line, error, metric, audit record, export or command output; API keys are listed without their value
and can be revoked from the command line."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.certificates import Authority
from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, ROTATE, WEBHOOK, WEBHOOKS, webhook_input
from tests.support import GraphQLResult, Receiver, Server, wait_until

ROLES = ("admin", "publisher", "auditor", "viewer")
CREATE_CREDENTIAL = """mutation($input: CreateCredentialInput!) {
  createCredential(input: $input) { id name kind maskedSecret } }"""
CREDENTIALS = "{ credentials { id name kind maskedSecret } }"
SEND_TEST = """mutation($id: ID!, $sample: Boolean) {
  sendTest(webhookId: $id, useSampleData: $sample) { success statusCode responseBody errors requestBody } }"""
REDELIVER = "mutation($id: ID!) { redeliver(deliveryId: $id) { id status attempts { number error } } }"
AUDIT_LOG = """query($first: Int, $after: String) { auditLog(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { position aggregateId aggregateType version eventType actor data hash previousHash } } } }"""
VERIFY = "{ verifyAuditLog { valid checked firstInvalidPosition } }"
EVENT_TYPES = "{ eventTypes { name variables } }"
SUBSCRIBE = 'subscription { deliveryUpdates(after: "0") { cursor deliveryId webhookId status statusCode } }'


def key_id(key: str) -> str:
    """The id `hookline keys list` shows for a key: the UUID in `hkl_<32 hex>_<secret>`."""
    return str(uuid.UUID(key.split("_")[1]))


def key_secret(key: str) -> str:
    return key.split("_", 2)[2]


@dataclass
class Capture:
    """Everything the scenario saw that must hold no secret, and the secrets to look for."""

    server: Server
    texts: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    secrets: dict[str, str] = field(default_factory=dict)  # value -> what it is

    def secret(self, value: str, what: str) -> None:
        assert len(value) >= 8, what
        self.secrets[value] = what

    def gql(self, key: str, query: str, variables: dict[str, Any] | None = None) -> GraphQLResult:
        result = self.server.gql(key, query, variables)
        self.texts.append((f"answer to {query.split('{')[0].strip() or query[:40]}", json.dumps(result)))
        return result

    def cli(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = self.server.cli(*args)
        assert done.returncode == expect, (args, done.stdout, done.stderr)
        self.texts.append((f"hookline {' '.join(args)} (stdout)", done.stdout))
        self.texts.append((f"hookline {' '.join(args)} (stderr)", done.stderr))
        return done

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.server.url + path, timeout=10) as response:
            text = str(response.read().decode())
        self.texts.append((f"GET {path}", text))
        return text

    def leaks(self) -> list[str]:
        found = []
        for where, text in self.texts:
            for value, what in self.secrets.items():
                if value in text:
                    found.append(f"{what} in {where}")
        return found


def admin_read(server: Server, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """An admin reading a signing secret on purpose (the one place it may appear): not captured."""
    data: dict[str, Any] = server.gql(key, query, variables).ok()
    return data


async def subscribe_once(server: Server, key: str, count: int) -> list[str]:
    """Opens deliveryUpdates with the key in `connection_init` and returns the raw messages."""
    raw: list[str] = []
    url = server.url.replace("http", "ws", 1) + "/graphql"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url, protocols=["graphql-transport-ws"], timeout=aiohttp.ClientWSTimeout(10)
        ) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        deadline = time.monotonic() + 15
        while sum('"next"' in m for m in raw) < count and time.monotonic() < deadline:
            message = await ws.receive(timeout=deadline - time.monotonic())
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            raw.append(str(message.data))
        await ws.send_json({"id": "1", "type": "complete"})
    return raw


def test_no_secret_appears_in_any_log_answer_export_output_or_metric(
    embedded_server: Server, receiver: Receiver, token_endpoint: Receiver
) -> None:
    server = embedded_server
    # Everything the process can log, it logs: debug from the start.
    server.stop()
    server.env["HOOKLINE_LOG_LEVEL"] = "debug"
    server.start()
    capture = Capture(server)
    capture.secret((server.directory / "var" / "secret.key").read_text().strip(), "the store's key")

    org = f"secrets-{uuid.uuid4().hex[:10]}"
    keys = {role: server.key(org, role) for role in ROLES}
    spare = server.key(org, "admin")
    other_org_admin = server.key(f"secrets-other-{uuid.uuid4().hex[:10]}", "admin")
    for role, key in [*keys.items(), ("spare admin", spare), ("other admin", other_org_admin)]:
        capture.secret(key, f"the {role} API key")
        capture.secret(key_secret(key), f"the secret part of the {role} API key")
    admin, publisher = keys["admin"], keys["publisher"]

    # Credentials of every kind, and one refused with its secret in the bad input.
    password, token, header_value = (f"{kind}-{secrets.token_urlsafe(24)}" for kind in ("pw", "tok", "hdr"))
    capture.secret(password, "the BASIC password")
    capture.secret(
        base64.b64encode(f"svc-user:{password}".encode()).decode(), "the BASIC Authorization value"
    )
    capture.secret(token, "the BEARER token")
    capture.secret(header_value, "the HEADER value")
    client_secret, access_token = f"cs-{secrets.token_urlsafe(24)}", f"at-{secrets.token_urlsafe(24)}"
    capture.secret(client_secret, "the OAUTH2 client secret")
    capture.secret(
        base64.b64encode(f"svc-client:{client_secret}".encode()).decode(), "the token request's Basic value"
    )
    capture.secret(access_token, "the OAUTH2 access token")
    token_endpoint.respond = lambda _: (
        200,
        {},
        json.dumps({"access_token": access_token, "expires_in": 3600}),
    )
    client = Authority.create("Secrets CA").client("svc-client")
    for n, line in enumerate(client.private_key_pem.splitlines()[1:-1]):
        capture.secret(line, f"line {n + 1} of the MTLS private key")
    credential_inputs = {
        "BASIC": {"name": "basic", "kind": "BASIC", "username": "svc-user", "password": password},
        "BEARER": {"name": "bearer", "kind": "BEARER", "token": token},
        "HEADER": {
            "name": "header",
            "kind": "HEADER",
            "headerName": "X-Api-Key",
            "headerValue": header_value,
        },
        "OAUTH2_CLIENT_CREDENTIALS": {
            "name": "oauth2",
            "kind": "OAUTH2_CLIENT_CREDENTIALS",
            "tokenUrl": f"{token_endpoint.url}/token",
            "clientId": "svc-client",
            "clientSecret": client_secret,
        },
        "MTLS": {
            "name": "mtls",
            "kind": "MTLS",
            "certificatePem": client.certificate_pem,
            "privateKeyPem": client.private_key_pem,
        },
    }
    credentials = {
        kind: capture.gql(admin, CREATE_CREDENTIAL, {"input": spec}).ok()["createCredential"]
        for kind, spec in credential_inputs.items()
    }
    refused_secret = f"refused-{secrets.token_urlsafe(24)}"
    capture.secret(refused_secret, "a refused credential's token")
    bad = {"name": "bad", "kind": "BEARER", "token": refused_secret + "\n"}
    assert capture.gql(admin, CREATE_CREDENTIAL, {"input": bad}).codes == ["BAD_USER_INPUT"]

    # Webhooks using them (one answering 500, so that failures are logged too) and one without.
    receiver.respond = lambda r: (500, {}, "no") if r.path.startswith("/failing") else (200, {}, "ok")
    webhooks: dict[str, dict[str, Any]] = {}
    for kind, credential in [*credentials.items(), ("NONE", None)]:
        path = "/failing" if kind == "HEADER" else f"/{kind.lower()}"
        spec = webhook_input(
            receiver.url + path,
            name=f"secret {kind}",
            eventTypes=["secrets.event"],
            credentialId=credential["id"] if credential else None,
        )
        created = admin_read(server, admin, CREATE_WEBHOOK, {"input": spec})["createWebhook"]
        webhooks[kind] = created
        capture.secret(created["signingSecret"], f"the signing secret of the {kind} webhook")
        capture.secret(created["signingSecret"].removeprefix("whsec_"), f"the key of the {kind} webhook")
    rotated = admin_read(server, admin, ROTATE, {"id": webhooks["BASIC"]["id"]})["rotateSigningSecret"]
    capture.secret(rotated["signingSecret"], "the rotated signing secret")
    capture.secret(rotated["signingSecret"].removeprefix("whsec_"), "the rotated signing key")
    assert rotated["signingSecret"] != webhooks["BASIC"]["signingSecret"]

    # Reading as the other roles, and across organisations.
    for role in ("auditor", "viewer"):
        listed = capture.gql(keys[role], WEBHOOKS, {"first": 500}).ok()["webhooks"]["edges"]
        assert {e["node"]["signingSecret"] for e in listed} == {None}
        capture.gql(keys[role], WEBHOOK, {"id": webhooks["BASIC"]["id"]})
    masked = capture.gql(keys["auditor"], CREDENTIALS).ok()["credentials"]
    assert {c["kind"] for c in masked} == set(credential_inputs)
    capture.gql(admin, CREDENTIALS)
    capture.gql(other_org_admin, WEBHOOK, {"id": webhooks["BASIC"]["id"]})
    capture.gql(publisher, EVENT_TYPES)

    # Events delivered with the credentials, a redelivery, tests of every webhook.
    for n in range(3):
        capture.gql(publisher, PUBLISH, {"input": {"type": "secrets.event", "payload": {"n": n}}}).ok()
    receiver.wait_for(3 * len(webhooks))
    headers = {r.path: r.headers for r in receiver.requests}
    assert headers["/basic"]["Authorization"].startswith("Basic ")
    assert headers["/bearer"]["Authorization"] == f"Bearer {token}"
    assert headers["/failing"]["X-Api-Key"] == header_value
    deliveries = capture.gql(admin, DELIVERIES, {"first": 500}).ok()["deliveries"]["edges"]
    capture.gql(admin, REDELIVER, {"id": deliveries[0]["node"]["id"]})
    for webhook in webhooks.values():
        for sample in (False, True):
            capture.gql(admin, SEND_TEST, {"id": webhook["id"], "sample": sample})

    # Keys that do not work: a wrong secret for a real key id, a revoked key.
    wrong = spare.rsplit("_", 1)[0] + "_" + secrets.token_urlsafe(32)
    capture.secret(wrong, "a forged API key")
    assert capture.gql(wrong, WEBHOOKS).codes == ["UNAUTHENTICATED"]
    capture.cli("keys", "revoke", key_id(spare))
    wait_until(lambda: capture.gql(spare, WEBHOOKS).codes == ["UNAUTHENTICATED"], timeout=6.5, interval=0.5)

    # The live stream, with the key in connection_init.
    stream = asyncio.run(subscribe_once(server, keys["viewer"], 3))
    assert sum('"next"' in m for m in stream) >= 3, stream
    capture.texts += [("deliveryUpdates", m) for m in stream]

    # The audit trail: read, verified, exported; keys listed; metrics.
    cursor = None
    while True:
        page = capture.gql(keys["auditor"], AUDIT_LOG, {"first": 500, "after": cursor}).ok()["auditLog"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
    assert capture.gql(admin, VERIFY).ok()["verifyAuditLog"]["valid"] is True
    export = server.directory / "audit.jsonl"
    capture.cli("audit", "export", "--out", str(export))
    capture.texts.append(("the audit export file", export.read_text()))
    capture.cli("audit", "export", "--org", org)
    capture.cli("audit", "verify", str(export))
    listed = capture.cli("keys", "list").stdout
    assert key_id(admin) in listed
    capture.cli("keys", "list", "--org", org)
    metrics = capture.get("/metrics")
    assert "hookline_attempts" in metrics
    capture.get("/readyz")

    wait_until(lambda: "attempt recorded" in server.output(), timeout=10)
    server.stop()  # everything it had to say is in the log now
    capture.texts.append(("serve.log", server.output()))

    assert len(capture.texts) > 40
    assert capture.leaks() == []
    # The search finds what is there: the target did get the credentials, and the admin the secrets.
    control = Capture(server, texts=[("the receiver", str([r.headers for r in receiver.requests]))])
    control.secrets = dict(capture.secrets)
    assert {
        "the BEARER token in the receiver",
        "the HEADER value in the receiver",
        "the OAUTH2 access token in the receiver",
    } <= set(control.leaks())


# -- keys list and keys revoke -----------------------------------------------------------------------


def test_keys_list_shows_ids_and_roles_but_never_a_key(embedded_server: Server) -> None:
    org = f"keys-{uuid.uuid4().hex[:10]}"
    other = f"keys-other-{uuid.uuid4().hex[:10]}"
    keys = {role: embedded_server.key(org, role) for role in ROLES}
    other_key = embedded_server.key(other, "viewer")

    listed = embedded_server.cli("keys", "list", "--org", org)
    everything = embedded_server.cli("keys", "list")

    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert {(row[0], row[1], row[2], row[4]) for row in rows} == {
        (key_id(key), org, role, "active") for role, key in keys.items()
    }
    assert key_id(other_key) not in listed.stdout
    assert key_id(other_key) in everything.stdout
    for key in [*keys.values(), other_key]:
        for output in (listed, everything):
            assert key not in output.stdout + output.stderr
            assert key_secret(key) not in output.stdout + output.stderr


def test_a_revoked_key_is_unauthenticated_within_6_seconds_and_listed_as_revoked(
    embedded_server: Server,
) -> None:
    org = f"keys-{uuid.uuid4().hex[:10]}"
    doomed = embedded_server.key(org, "admin")
    kept = embedded_server.key(org, "viewer")
    assert embedded_server.gql(doomed, WEBHOOKS).ok()  # in the gateway's cache now

    revoked = embedded_server.cli("keys", "revoke", key_id(doomed))
    began = time.monotonic()

    assert revoked.returncode == 0, revoked.stderr
    assert key_id(doomed) in revoked.stdout
    assert doomed not in revoked.stdout + revoked.stderr
    wait_until(
        lambda: embedded_server.gql(doomed, WEBHOOKS).codes == ["UNAUTHENTICATED"], timeout=6, interval=0.2
    )
    assert time.monotonic() - began <= 6.5
    result = embedded_server.gql(doomed, WEBHOOKS)
    assert result.data is None
    assert "revoked" in result.errors[0]["message"] or "unknown" in result.errors[0]["message"]
    assert embedded_server.gql(kept, WEBHOOKS).ok()
    rows = {
        line.split("\t")[0]: line.split("\t")
        for line in embedded_server.cli("keys", "list").stdout.splitlines()
    }
    assert rows[key_id(doomed)][4] == "revoked"
    assert rows[key_id(kept)][4] == "active"


def test_revoking_a_key_that_does_not_exist_fails_with_a_clear_message(embedded_server: Server) -> None:
    for given in ["00000000-0000-4000-8000-000000000000", "nope", "", "hkl_0123_abc", "' OR 1=1 --"]:
        done = embedded_server.cli("keys", "revoke", given)

        assert done.returncode != 0, given
        assert "no key with id" in done.stderr, (given, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr
        assert done.stdout == ""
