"""Enterprise egress end to end, through a real `hookline serve` and real servers on loopback: OAuth2
client-credentials tokens from a token endpoint, mutual TLS with a private CA, and the egress proxy.
No client secret or private key appears in any answer, log line or audit record."""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pydantic import ValidationError

from domain.credentials import TokenGrant
from domain.requests import OutgoingRequest
from harness.certificates import Authority, Issued
from harness.proxy import Proxy
from hookline.settings import Settings
from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, webhook_input
from tests.support import Receiver, Server, running_server, wait_until
from tests.test_hostile_targets import LyingResolver
from workers.sender import Sender

CREATE_CREDENTIAL = """mutation($input: CreateCredentialInput!) {
  createCredential(input: $input) { id name kind maskedSecret } }"""
CREDENTIALS = "{ credentials { id name kind maskedSecret } }"
SEND_TEST = "mutation($id: ID!) { sendTest(webhookId: $id) { success statusCode errors } }"
AUDIT_LOG = "{ auditLog(first: 500) { edges { node { aggregateType eventType data } } } }"
EVENT = "egress.event"
JSON_HEADERS = {"Content-Type": "application/json"}

SERVER_CA = Authority.create("Private server CA")
CLIENT_CA = Authority.create("Client CA")
SERVER_CERTIFICATE = SERVER_CA.server()
CLIENT = CLIENT_CA.client("hookline-client")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("egress"),
        "embedded",
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        HOOKLINE_LOG_LEVEL="debug",
        HOOKLINE_RETRY_SCHEDULE="60",
    ) as running:
        yield running


@pytest.fixture
def admin(server: Server) -> str:
    return server.key(f"egress-{uuid.uuid4().hex[:10]}", "admin")


def token_answer(token: str, lifetime: int = 3600) -> str:
    return json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})


def tls_receiver_context(directory: Path, *, client_certificate: bool = True) -> ssl.SSLContext:
    """A server's TLS: the private CA's certificate for 127.0.0.1, and a client certificate required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (directory / "server.pem").write_text(
        SERVER_CERTIFICATE.certificate_pem + SERVER_CERTIFICATE.private_key_pem
    )
    context.load_cert_chain(directory / "server.pem")
    if client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=CLIENT_CA.pem)
    return context


def create_credential(server: Server, admin: str, **spec: str) -> str:
    answer = server.gql(admin, CREATE_CREDENTIAL, {"input": {"name": spec.get("kind", "c"), **spec}}).ok()
    return str(answer["createCredential"]["id"])


def oauth2_spec(endpoint: Receiver, client_secret: str) -> dict[str, str]:
    return {
        "kind": "OAUTH2_CLIENT_CREDENTIALS",
        "tokenUrl": f"{endpoint.url}/oauth2/token",
        "clientId": "hookline-client",
        "clientSecret": client_secret,
        "scope": "incidents.write",
        "audience": "https://itsm.example",
    }


def mtls_spec(client: Issued = CLIENT) -> dict[str, str]:
    return {
        "kind": "MTLS",
        "certificatePem": client.certificate_pem,
        "privateKeyPem": client.private_key_pem,
        "caBundlePem": SERVER_CA.pem,
    }


def create_webhook(server: Server, admin: str, url: str, credential_id: str | None = None) -> str:
    spec = webhook_input(
        url, name=f"egress {uuid.uuid4().hex[:6]}", eventTypes=[EVENT], credentialId=credential_id
    )
    return str(server.gql(admin, CREATE_WEBHOOK, {"input": spec}).ok()["createWebhook"]["id"])


def publish(server: Server, key: str, n: int = 0) -> None:
    server.gql(key, PUBLISH, {"input": {"type": EVENT, "payload": {"n": n}}}).ok()


def deliveries(server: Server, key: str, webhook_id: str) -> list[dict[str, Any]]:
    found = server.gql(key, DELIVERIES, {"webhookId": webhook_id, "first": 100}).ok()
    return [edge["node"] for edge in found["deliveries"]["edges"]]


def attempted(server: Server, key: str, webhook_id: str) -> dict[str, Any]:
    """The webhook's one delivery, once it has an attempt."""
    return wait_until(  # type: ignore[no-any-return]
        lambda: next((d for d in deliveries(server, key, webhook_id) if d["attempts"]), None), timeout=30
    )


def assert_nothing_shows(server: Server, admin: str, webhook_ids: list[str], *hidden: str) -> None:
    """The secrets appear in no answer to their admin, no audit record and no log line (debug)."""
    audit = server.gql(admin, AUDIT_LOG).ok()["auditLog"]["edges"]
    assert "Credential" in {e["node"]["aggregateType"] for e in audit}  # the records looked into exist
    texts = {
        "credentials": json.dumps(server.gql(admin, CREDENTIALS).ok()),
        "audit log": json.dumps(audit),
        "deliveries": json.dumps([deliveries(server, admin, w) for w in webhook_ids]),
        "serve's log": server.output(),
    }
    for value in hidden:
        assert value
        assert not [where for where, text in texts.items() if value in text]


# -- OAuth2 client credentials ------------------------------------------------------------------------


def test_a_burst_of_deliveries_shares_one_token_sent_as_a_bearer(
    server: Server, admin: str, token_endpoint: Receiver, receiver: Receiver
) -> None:
    client_secret = f"cs-{secrets.token_urlsafe(20)}"
    token_endpoint.hold_seconds = 1.0  # every delivery of the burst asks while the first request is out
    credential = create_credential(server, admin, **oauth2_spec(token_endpoint, client_secret))
    webhooks = [create_webhook(server, admin, f"{receiver.url}/hook{i}", credential) for i in range(4)]
    for n in range(5):
        publish(server, admin, n)

    received = receiver.wait_for(20, timeout=30)
    assert {r.headers["Authorization"] for r in received} == {"Bearer tok-1"}
    assert len(token_endpoint.requests) == 1
    asked = token_endpoint.requests[0]
    assert (asked.method, asked.path) == ("POST", "/oauth2/token")
    basic = base64.b64encode(f"hookline-client:{client_secret}".encode()).decode()
    assert asked.headers["Authorization"] == f"Basic {basic}"
    assert parse_qs(asked.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["incidents.write"],
        "audience": ["https://itsm.example"],
    }
    assert (
        server.gql(admin, CREDENTIALS).ok()["credentials"][0]["maskedSecret"] == "••••" + client_secret[-2:]
    )
    assert_nothing_shows(server, admin, webhooks, client_secret, basic)


def test_a_401_from_the_target_fetches_a_new_token_once(
    server: Server, admin: str, token_endpoint: Receiver, receiver: Receiver
) -> None:
    receiver.respond = lambda r: (
        (401, {}, "expired") if r.headers["Authorization"] == "Bearer tok-1" else (200, {}, "ok")
    )
    credential = create_credential(server, admin, **oauth2_spec(token_endpoint, "client-secret-1"))
    webhook = create_webhook(server, admin, f"{receiver.url}/renewing", credential)
    publish(server, admin)

    delivery = wait_until(
        lambda: next((d for d in deliveries(server, admin, webhook) if d["status"] == "SUCCEEDED"), None)
    )
    assert [r.headers["Authorization"] for r in receiver.requests] == ["Bearer tok-1", "Bearer tok-2"]
    assert len(token_endpoint.requests) == 2
    assert [(a["number"], a["statusCode"], a["error"]) for a in delivery["attempts"]] == [(1, 200, None)]


def test_send_test_sends_with_a_token_too(
    server: Server, admin: str, token_endpoint: Receiver, receiver: Receiver
) -> None:
    credential = create_credential(server, admin, **oauth2_spec(token_endpoint, "client-secret-6"))
    webhook = create_webhook(server, admin, f"{receiver.url}/tried", credential)
    tried = server.gql(admin, SEND_TEST, {"id": webhook}).ok()["sendTest"]
    assert (tried["success"], tried["statusCode"]) == (True, 200)
    assert receiver.requests[0].headers["Authorization"] == "Bearer tok-1"


def test_a_target_that_keeps_answering_401_is_asked_twice_per_attempt_and_the_attempt_fails(
    server: Server, admin: str, token_endpoint: Receiver, receiver: Receiver
) -> None:
    receiver.respond = lambda _: (401, {}, "no")
    credential = create_credential(server, admin, **oauth2_spec(token_endpoint, "client-secret-2"))
    webhook = create_webhook(server, admin, f"{receiver.url}/refusing", credential)
    publish(server, admin)

    delivery = attempted(server, admin, webhook)
    assert (delivery["status"], delivery["attempts"][0]["error"]) == ("RETRYING", "HTTP 401")
    assert len(receiver.requests) == 2
    assert len(token_endpoint.requests) == 2


def test_a_token_endpoint_refusal_is_the_attempts_error_and_the_delivery_retries(
    server: Server, admin: str, token_endpoint: Receiver, receiver: Receiver
) -> None:
    client_secret = f"wrong-{secrets.token_urlsafe(20)}"
    token_endpoint.respond = lambda _: (401, JSON_HEADERS, '{"error": "invalid_client"}')
    credential = create_credential(server, admin, **oauth2_spec(token_endpoint, client_secret))
    webhook = create_webhook(server, admin, f"{receiver.url}/never", credential)
    publish(server, admin)

    delivery = attempted(server, admin, webhook)
    assert delivery["status"] == "RETRYING"
    assert delivery["nextAttemptAt"] is not None
    assert delivery["attempts"][0]["error"] == "token endpoint answered 401: invalid_client"
    assert delivery["attempts"][0]["statusCode"] is None
    assert receiver.requests == []
    assert_nothing_shows(server, admin, [webhook], client_secret)


def test_a_token_endpoint_on_the_private_ca_is_trusted_with_the_credentials_ca_bundle(
    server: Server, admin: str, receiver: Receiver, tmp_path: Path
) -> None:
    with Receiver(tls=tls_receiver_context(tmp_path, client_certificate=False)) as endpoint:
        endpoint.respond = lambda _: (200, JSON_HEADERS, token_answer("private-ca-token"))
        trusting = create_credential(
            server, admin, **oauth2_spec(endpoint, "cs-4"), caBundlePem=SERVER_CA.pem
        )
        not_trusting = create_credential(server, admin, **oauth2_spec(endpoint, "cs-5"))
        create_webhook(server, admin, f"{receiver.url}/trusting", trusting)
        refused = create_webhook(server, admin, f"{receiver.url}/not-trusting", not_trusting)
        publish(server, admin)

        [received] = receiver.wait_for(1)
        assert (received.path, received.headers["Authorization"]) == ("/trusting", "Bearer private-ca-token")
        error = attempted(server, admin, refused)["attempts"][0]["error"]
        assert error.startswith("token endpoint: could not connect:")
        assert "CERTIFICATE_VERIFY_FAILED" in error


def test_a_token_url_on_a_metadata_address_is_refused_on_save(server: Server, admin: str) -> None:
    spec = {
        "name": "imds",
        "kind": "OAUTH2_CLIENT_CREDENTIALS",
        "tokenUrl": "http://169.254.169.254/latest/token",
        "clientId": "x",
        "clientSecret": "y",
    }
    answer = server.gql(admin, CREATE_CREDENTIAL, {"input": spec})
    assert (answer.codes, answer.fields) == (["BAD_USER_INPUT"], ["tokenUrl"])
    assert "cloud metadata" in answer.errors[0]["message"]


def test_a_token_url_on_loopback_is_refused_by_the_default_target_policy(strict_server: Server) -> None:
    admin = strict_server.key(f"egress-strict-{uuid.uuid4().hex[:8]}", "admin")
    spec = {"name": "lo", "kind": "OAUTH2_CLIENT_CREDENTIALS", "clientId": "x", "clientSecret": "y"}
    for url in ("http://127.0.0.1:9/token", "https://localhost/token", "http://[::1]/token"):
        answer = strict_server.gql(admin, CREATE_CREDENTIAL, {"input": {**spec, "tokenUrl": url}})
        assert (answer.codes, answer.fields) == (["BAD_USER_INPUT"], ["tokenUrl"]), url


async def test_a_token_url_that_resolves_to_loopback_is_refused_at_send_time(
    token_endpoint: Receiver,
) -> None:
    resolver = LyingResolver({"login.example": "127.0.0.1"})
    sender = Sender(allow_private_targets=False, clock=lambda: datetime.now(UTC), resolver=resolver)
    grant = TokenGrant(f"http://login.example:{token_endpoint.port}/token", "id", "secret")
    await sender.start()
    try:
        attempt = await sender.send(post("https://203.0.113.10/hook", token_grant=grant), 1)
    finally:
        await sender.close()
    assert attempt.error == "token endpoint: target refused: it resolves to a loopback address"
    assert token_endpoint.requests == []
    assert resolver.asked == ["login.example"]


def post(url: str, **extra: Any) -> OutgoingRequest:
    return OutgoingRequest(method="POST", url=url, headers=dict(JSON_HEADERS), body=b"{}", **extra)


# -- mutual TLS and a private CA ------------------------------------------------------------------------


def test_a_client_certificate_is_presented_and_the_private_ca_trusted_for_that_credential_only(
    server: Server, admin: str, tmp_path: Path
) -> None:
    with Receiver(tls=tls_receiver_context(tmp_path)) as tls_receiver:
        credential = create_credential(server, admin, **mtls_spec())
        with_certificate = create_webhook(server, admin, f"{tls_receiver.url}/mtls", credential)
        without = create_webhook(server, admin, f"{tls_receiver.url}/plain")
        publish(server, admin)

        [received] = tls_receiver.wait_for(1)
        assert (received.path, received.client_certificate) == ("/mtls", "hookline-client")
        assert wait_until(lambda: deliveries(server, admin, with_certificate)[0]["status"] == "SUCCEEDED")
        refused = attempted(server, admin, without)
        assert "CERTIFICATE_VERIFY_FAILED" in refused["attempts"][0]["error"]
        assert len(tls_receiver.requests) == 1
    key_body = "".join(CLIENT.private_key_pem.splitlines()[1:-1])
    assert_nothing_shows(
        server, admin, [with_certificate, without], key_body, CLIENT.private_key_pem.splitlines()[1]
    )


def test_a_bad_certificate_key_and_ca_bundle_are_refused_together_without_quoting_the_key(
    server: Server, admin: str
) -> None:
    expired = CLIENT_CA.client("hookline-client", expired=True)
    other = CLIENT_CA.client("someone-else")
    spec = {
        "name": "bad",
        "kind": "MTLS",
        "certificatePem": expired.certificate_pem,
        "privateKeyPem": other.private_key_pem,
        "caBundlePem": "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n",
    }
    answer = server.gql(admin, CREATE_CREDENTIAL, {"input": spec})
    assert answer.codes == ["BAD_USER_INPUT"]
    assert sorted(answer.fields) == ["caBundlePem", "certificatePem", "privateKeyPem"]
    assert other.private_key_pem.splitlines()[1] not in json.dumps(answer)
    malformed = server.gql(
        admin, CREATE_CREDENTIAL, {"input": {**spec, "certificatePem": "x", "caBundlePem": None}}
    )
    assert sorted(malformed.fields) == ["certificatePem"]


# -- the egress proxy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_every_target_and_token_request_goes_through_the_proxy_but_no_proxy_hosts(
    mode: str, tmp_path: Path, token_endpoint: Receiver, receiver: Receiver
) -> None:
    """In both modes: in the distributed one, `hookline worker`s send (and fetch the token)."""
    with (
        Proxy() as proxy,
        Receiver(tls=tls_receiver_context(tmp_path)) as tls_receiver,
        running_server(
            tmp_path,
            mode,
            workers=1,
            HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
            HOOKLINE_EGRESS_PROXY=proxy.url,
            HOOKLINE_EGRESS_NO_PROXY="localhost, .corp.example",
        ) as server,
    ):
        admin = server.key("egress-proxy", "admin")
        oauth2 = create_credential(server, admin, **oauth2_spec(token_endpoint, "client-secret-3"))
        mtls = create_credential(server, admin, **mtls_spec())
        create_webhook(server, admin, f"{receiver.url}/proxied", oauth2)
        create_webhook(server, admin, f"{tls_receiver.url}/tunnelled", mtls)
        create_webhook(server, admin, f"http://localhost:{receiver.port}/direct")
        publish(server, admin)

        receiver.wait_for(2)
        tls_receiver.wait_for(1)
        assert sorted(r.path for r in receiver.requests) == ["/direct", "/proxied"]
        assert tls_receiver.requests[0].client_certificate == "hookline-client"
        assert sorted(proxy.passed) == sorted(
            [
                f"POST http://127.0.0.1:{token_endpoint.port}/oauth2/token",
                f"POST http://127.0.0.1:{receiver.port}/proxied",
                f"CONNECT 127.0.0.1:{tls_receiver.port}",
            ]
        )
        [proxied] = [r for r in receiver.requests if r.path == "/proxied"]
        assert proxied.headers["Authorization"] == "Bearer tok-1"


async def test_through_the_proxy_the_targets_own_resolved_address_is_still_checked(
    receiver: Receiver,
) -> None:
    with Proxy() as proxy:
        resolver = LyingResolver({"rebound.example": "127.0.0.1", "meta.example": "169.254.169.254"})
        strict = Sender(
            allow_private_targets=False, clock=lambda: datetime.now(UTC), resolver=resolver, proxy=proxy.url
        )
        lenient = Sender(
            allow_private_targets=True, clock=lambda: datetime.now(UTC), resolver=resolver, proxy=proxy.url
        )
        await strict.start()
        await lenient.start()
        try:
            rebound = await strict.send(post(f"http://rebound.example:{receiver.port}/"), 1)
            literal = await strict.send(post(f"https://127.0.0.1:{receiver.port}/"), 1)
            metadata = await lenient.send(post("http://meta.example/latest/meta-data"), 1)
            assert proxy.passed == []
            allowed = await lenient.send(post(f"{receiver.url}/allowed"), 1)
        finally:
            await strict.close()
            await lenient.close()
    assert rebound.error == "target refused: it resolves to a loopback address"
    assert literal.error == "target refused: it resolves to a loopback address"
    assert metadata.error == "target refused: it resolves to a cloud metadata address"
    assert (allowed.status_code, proxy.passed) == (200, [f"POST {receiver.url}/allowed"])


@pytest.mark.parametrize(
    "proxy", ["socks5://127.0.0.1:1080", "https://proxy.corp.example:3128", "http://", "proxy:3128"]
)
def test_an_egress_proxy_that_is_not_an_http_url_stops_the_process_starting(proxy: str) -> None:
    with pytest.raises(ValidationError, match="HTTP forward proxy"):
        Settings(egress_proxy=proxy)


def test_the_egress_settings_read_from_the_environment() -> None:
    settings = Settings(
        egress_proxy="http://user:pw@proxy.corp.example:3128", egress_no_proxy=" a.example, .b.example ,"
    )
    assert settings.no_proxy_hosts == ("a.example", ".b.example")
    assert Settings().egress_proxy is None
    assert Settings().no_proxy_hosts == ()


async def test_the_token_replaces_an_authorization_header_of_the_webhooks_own(
    token_endpoint: Receiver, receiver: Receiver
) -> None:
    sender = Sender(allow_private_targets=True, clock=lambda: datetime.now(UTC))
    grant = TokenGrant(f"{token_endpoint.url}/token", "id", "secret")
    request = post(f"{receiver.url}/own-header", token_grant=grant)
    request.headers["authorization"] = "Basic b2xkOm9uZQ=="
    await sender.start()
    try:
        attempt = await sender.send(request, 1)
    finally:
        await sender.close()
    assert attempt.status_code == 200
    sent = [(k, v) for k, v in receiver.requests[0].raw_headers if k.lower() == "authorization"]
    assert sent == [("Authorization", "Bearer tok-1")]
