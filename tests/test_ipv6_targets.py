"""IPv6 addresses that carry an IPv4 address, through the real gateway: each is judged by the IPv4 address
it carries (mapped, compatible, translated, NAT64, local-use NAT64, 6to4, Teredo, ISATAP), when a webhook
is saved and when a delivery is sent, and the refusal names that address's kind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, UPDATE_WEBHOOK, webhook_input
from tests.support import GraphQLResult, Receiver, Server, server_env, wait_until

# target host, the kind of address it must be refused as, and the form that carries it
FORMS = [
    pytest.param("[::127.0.0.1]", "loopback", "IPv4-compatible", id="ipv4-compatible-loopback"),
    pytest.param("[::ffff:0:10.0.0.5]", "private", "IPv4-translated", id="ipv4-translated-private"),
    pytest.param("[64:ff9b::127.0.0.1]", "loopback", "NAT64", id="nat64-loopback"),
    pytest.param("[64:ff9b::169.254.169.254]", "cloud metadata", "NAT64", id="nat64-metadata"),
    pytest.param("[64:ff9b:1::192.168.1.1]", "private", "local-use NAT64", id="local-use-nat64-private"),
    pytest.param("[2002:a9fe:a9fe::1]", "cloud metadata", "6to4", id="6to4-metadata"),
    pytest.param("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "loopback", "Teredo", id="teredo-loopback"),
    pytest.param("[2600::5efe:10.0.0.5]", "private", "ISATAP", id="isatap-private"),
]


def _refusal_messages(result: GraphQLResult) -> list[str]:
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    fields = [f for e in result.errors for f in e["extensions"]["fields"]]
    assert {f["field"] for f in fields} == {"targetUrl"}, result.errors
    return [str(f["message"]) for f in fields]


@pytest.mark.parametrize(("host", "kind", "form"), FORMS)
def test_a_private_ipv4_address_inside_an_ipv6_literal_is_refused_on_create_naming_its_kind(
    strict_server: Server, org: str, host: str, kind: str, form: str
) -> None:
    admin = strict_server.key(org, "admin")
    result = strict_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(f"http://{host}/hook")})
    [message] = _refusal_messages(result)
    assert f" {kind} address" in message, message
    assert f"inside a{'n' if form[0] in 'aeiouAEIOU' else ''} {form} address" in message, message
    count = strict_server.gql(admin, "{ webhooks { totalCount } }").ok()["webhooks"]["totalCount"]
    assert count == 0


@pytest.mark.parametrize(("host", "kind", "form"), FORMS[:3])
def test_an_update_to_a_private_ipv4_address_inside_an_ipv6_literal_is_refused(
    strict_server: Server, org: str, host: str, kind: str, form: str
) -> None:
    admin = strict_server.key(org, "admin")
    created = strict_server.gql(
        admin, CREATE_WEBHOOK, {"input": webhook_input("https://93.184.215.14/hook")}
    ).ok()["createWebhook"]
    result = strict_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"targetUrl": f"http://{host}/hook"}}
    )
    [message] = _refusal_messages(result)
    assert f" {kind} address" in message, message
    assert form in message, message


@pytest.mark.parametrize(
    "host", ["[64:ff9b::93.184.215.14]", "[2002:5db8:d70e::1]", "[::ffff:0:93.184.215.14]"]
)
def test_a_public_ipv4_address_inside_an_ipv6_literal_is_still_accepted(
    strict_server: Server, org: str, host: str
) -> None:
    admin = strict_server.key(org, "admin")
    target = f"https://{host}/hook"
    created = strict_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(target)}).ok()
    assert created["createWebhook"]["targetUrl"] == target


# -- at send time ---------------------------------------------------------------------------------------

SEND_TEST = "mutation($id: ID!) { sendTest(webhookId: $id) { success errors } }"


# Forms a lenient policy lets a webhook be saved with (metadata addresses are refused by every policy).
SAVED_LENIENTLY = [p for p in FORMS if p.values[1] != "cloud metadata"]


@dataclass
class Reopened:
    server: Server
    receiver: Receiver  # where every target's port points: nothing must arrive
    admin: str
    publisher: str
    webhooks: dict[str, str]  # webhook id by target host


@pytest.fixture(scope="module")
def reopened_strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reopened]:
    """Webhooks to each form, saved while private targets were allowed; then the same store served with
    the default policy, as after an operator tightens it."""
    directory = tmp_path_factory.mktemp("ipv6-reopened")
    env = {"HOOKLINE_RETRY_SCHEDULE": "3600"}
    lenient = Server(directory=directory, env=server_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true", **env))
    org = f"org-{uuid.uuid4().hex[:12]}"
    with Receiver() as receiver:
        try:
            lenient.start()
            admin, publisher = lenient.key(org, "admin"), lenient.key(org, "publisher")
            webhooks = {}
            for param in SAVED_LENIENTLY:
                host = str(param.values[0])
                target = f"http://{host}:{receiver.port}/hook"
                created = lenient.gql(
                    admin, CREATE_WEBHOOK, {"input": webhook_input(target, eventTypes=["ipv6.embedded"])}
                ).ok()["createWebhook"]
                webhooks[host] = created["id"]
        finally:
            lenient.stop()
        strict = Server(directory=directory, env=server_env(**env))
        try:
            yield Reopened(strict.start(), receiver, admin, publisher, webhooks)
        finally:
            strict.stop()


def test_a_delivery_to_a_private_ipv4_address_inside_an_ipv6_address_is_refused_at_send_time(
    reopened_strict: Reopened,
) -> None:
    server, admin = reopened_strict.server, reopened_strict.admin
    server.gql(
        reopened_strict.publisher, PUBLISH, {"input": {"type": "ipv6.embedded", "payload": {"n": 1}}}
    ).ok()

    def first_attempts() -> dict[str, dict[str, Any]] | None:
        found = {}
        for host, webhook_id in reopened_strict.webhooks.items():
            edges = server.gql(admin, DELIVERIES, {"webhookId": webhook_id}).ok()["deliveries"]["edges"]
            attempts = edges[0]["node"]["attempts"] if edges else []
            if not attempts:
                return None
            found[host] = attempts[0]
        return found

    attempts: dict[str, dict[str, Any]] = wait_until(first_attempts, timeout=30)
    for param in SAVED_LENIENTLY:
        host, kind, form = (str(v) for v in param.values)
        attempt = attempts[host]
        assert attempt["statusCode"] is None, attempt
        error = str(attempt["error"])
        assert error.startswith("target refused: it resolves to "), (host, error)
        assert f" {kind} address" in error, (host, error)
        assert f" {form} address" in error, (host, error)
    assert reopened_strict.receiver.requests == []


def test_send_test_to_a_private_ipv4_address_inside_an_ipv6_address_is_refused(
    reopened_strict: Reopened,
) -> None:
    server, admin = reopened_strict.server, reopened_strict.admin
    for param in SAVED_LENIENTLY:
        host, kind, form = (str(v) for v in param.values)
        result = server.gql(admin, SEND_TEST, {"id": reopened_strict.webhooks[host]}).ok()["sendTest"]
        assert result["success"] is False, (host, result)
        errors = result["errors"]
        assert any(f" {kind} address" in e and f" {form} address" in e for e in errors), (host, errors)
    assert reopened_strict.receiver.requests == []
