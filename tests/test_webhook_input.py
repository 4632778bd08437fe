"""Webhook input validation through the real gateway: every problem named by field, all at once.

Each test uses an organisation of its own, so that "nothing was created" can be checked by counting.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest

from tests.queries import CREATE_WEBHOOK, DELETE_WEBHOOK, UPDATE_WEBHOOK, WEBHOOK, WEBHOOKS, webhook_input
from tests.support import GraphQLResult, Server

TARGET = "https://example.com/hooks"
CONTRACT_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT", "NOT_FOUND", "CONFLICT"}


def _create(server: Server, key: str, target: str = TARGET, **overrides: object) -> GraphQLResult:
    return server.gql(key, CREATE_WEBHOOK, {"input": webhook_input(target, **overrides)})


def _count(server: Server, key: str) -> int:
    return int(server.gql(key, WEBHOOKS, {}).ok()["webhooks"]["totalCount"])


def _assert_refused(result: GraphQLResult, *fields: str) -> None:
    """One BAD_USER_INPUT error whose `fields` name exactly these fields (each at least once)."""
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    assert result.fields, result.errors
    assert set(result.fields) == set(fields), result.errors
    assert all(f["message"] for e in result.errors for f in e["extensions"]["fields"]), result.errors


def _assert_create_refused(server: Server, key: str, result: GraphQLResult, *fields: str) -> None:
    _assert_refused(result, *fields)
    assert result.data is None or result.data.get("createWebhook") is None
    assert _count(server, key) == 0


# -- one problem at a time ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "\t\n"], ids=["empty", "spaces", "tab-and-newline"])
def test_a_blank_name_is_refused_naming_name(open_server: Server, org: str, name: str) -> None:
    admin = open_server.key(org, "admin")
    _assert_create_refused(open_server, admin, _create(open_server, admin, name=name), "name")


def test_a_name_over_200_characters_is_refused_naming_name(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    _assert_create_refused(open_server, admin, _create(open_server, admin, name="n" * 201), "name")


def test_a_name_of_exactly_200_characters_is_accepted(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = _create(open_server, admin, name="n" * 200).ok()["createWebhook"]
    assert created["name"] == "n" * 200


def test_an_empty_event_type_list_is_refused_naming_event_types(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    _assert_create_refused(open_server, admin, _create(open_server, admin, eventTypes=[]), "eventTypes")


@pytest.mark.parametrize(
    "target",
    ["ftp://example.com/hooks", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)"],
    ids=["ftp", "file", "gopher", "javascript"],
)
def test_a_target_url_that_is_not_http_or_https_is_refused(
    open_server: Server, org: str, target: str
) -> None:
    admin = open_server.key(org, "admin")
    _assert_create_refused(open_server, admin, _create(open_server, admin, target), "targetUrl")


@pytest.mark.parametrize(
    "target",
    ["http://[::1", "not a url", "", "http://", "http://example.com:99999/", "https://example.com:0/"],
    ids=["unclosed-bracket", "words", "empty", "no-host", "port-out-of-range", "port-zero"],
)
def test_an_unparseable_target_url_is_refused(open_server: Server, org: str, target: str) -> None:
    admin = open_server.key(org, "admin")
    _assert_create_refused(open_server, admin, _create(open_server, admin, target), "targetUrl")


@pytest.mark.parametrize(
    "name",
    ["X Team", "X-Team:", "X:Team", "", "X-Tëam"],
    ids=["space", "trailing-colon", "colon", "empty", "non-ascii"],
)
def test_a_header_name_that_is_not_an_http_token_is_refused(open_server: Server, org: str, name: str) -> None:
    admin = open_server.key(org, "admin")
    result = _create(open_server, admin, headers=[{"name": name, "value": "ops"}])
    _assert_create_refused(open_server, admin, result, "headers[0].name")


@pytest.mark.parametrize(
    "value", ["a\r\nX-Injected: 1", "a\nX-Injected: 1", "a\rb", "a\x00b"], ids=["crlf", "lf", "cr", "nul"]
)
def test_a_header_value_with_a_line_break_is_refused_naming_that_value(
    open_server: Server, org: str, value: str
) -> None:
    admin = open_server.key(org, "admin")
    result = _create(open_server, admin, headers=[{"name": "X-Team", "value": value}])
    _assert_create_refused(open_server, admin, result, "headers[0].value")


def test_the_problem_of_a_later_header_names_its_position(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    headers = [{"name": "X-Team", "value": "ops"}, {"name": "X-Site", "value": "a\r\nb"}]
    result = _create(open_server, admin, headers=headers)
    _assert_create_refused(open_server, admin, result, "headers[1].value")


@pytest.mark.parametrize(
    "name",
    ["webhook-signature", "Webhook-Id", "WEBHOOK-TIMESTAMP", "Host", "Content-Length", "Transfer-Encoding"],
)
def test_a_header_that_hookline_sets_itself_is_refused(open_server: Server, org: str, name: str) -> None:
    admin = open_server.key(org, "admin")
    result = _create(open_server, admin, headers=[{"name": name, "value": "v1,forged"}])
    _assert_create_refused(open_server, admin, result, "headers[0].name")


@pytest.mark.parametrize("rate", [0, -5, 100_001])
def test_a_rate_limit_outside_1_to_100000_is_refused(open_server: Server, org: str, rate: int) -> None:
    admin = open_server.key(org, "admin")
    result = _create(open_server, admin, rateLimitPerSecond=rate)
    _assert_create_refused(open_server, admin, result, "rateLimitPerSecond")


@pytest.mark.parametrize("rate", [1, 100_000])
def test_a_rate_limit_at_either_end_of_the_range_is_accepted(
    open_server: Server, org: str, rate: int
) -> None:
    admin = open_server.key(org, "admin")
    created = _create(open_server, admin, rateLimitPerSecond=rate).ok()["createWebhook"]
    assert created["rateLimitPerSecond"] == rate


@pytest.mark.parametrize(
    "credential_id", [str(uuid.uuid4()), "not-a-credential-id"], ids=["unknown", "malformed"]
)
def test_an_unknown_credential_is_refused_naming_credential_id(
    open_server: Server, org: str, credential_id: str
) -> None:
    admin = open_server.key(org, "admin")
    result = _create(open_server, admin, credentialId=credential_id)
    _assert_create_refused(open_server, admin, result, "credentialId")


@pytest.mark.parametrize(
    "template",
    ['{"text": "{{alert_name}}"', "Disk full on {{workspace_name}}", "{'single': 'quotes'}"],
    ids=["unclosed-object", "plain-text", "single-quotes"],
)
def test_a_payload_template_that_is_not_json_is_refused(open_server: Server, org: str, template: str) -> None:
    admin = open_server.key(org, "admin")
    result = _create(open_server, admin, payloadTemplate=template)
    _assert_create_refused(open_server, admin, result, "payloadTemplate")


def test_every_problem_of_one_create_comes_back_in_one_error(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    result = open_server.gql(
        admin,
        CREATE_WEBHOOK,
        {
            "input": {
                "name": " ",
                "eventTypes": [],
                "targetUrl": "ftp://example.com/hooks",
                "headers": [
                    {"name": "Bad Name", "value": "ok"},
                    {"name": "X-Ok", "value": "a\r\nX-Injected: 1"},
                    {"name": "webhook-signature", "value": "v1,forged"},
                ],
                "rateLimitPerSecond": 0,
                "credentialId": str(uuid.uuid4()),
                "payloadTemplate": "{not json",
            }
        },
    )
    assert len(result.errors) == 1, result.errors
    _assert_create_refused(
        open_server,
        admin,
        result,
        "name",
        "eventTypes",
        "targetUrl",
        "headers[0].name",
        "headers[1].value",
        "headers[2].name",
        "rateLimitPerSecond",
        "credentialId",
        "payloadTemplate",
    )


# -- updates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"targetUrl": "ftp://example.com/hooks"}, "targetUrl", id="target-url"),
        pytest.param({"name": "   "}, "name", id="name"),
        pytest.param({"eventTypes": []}, "eventTypes", id="event-types"),
        pytest.param({"headers": [{"name": "X-Team", "value": "a\r\nb"}]}, "headers[0].value", id="header"),
        pytest.param({"rateLimitPerSecond": -5}, "rateLimitPerSecond", id="rate-limit"),
        pytest.param({"credentialId": str(uuid.uuid4())}, "credentialId", id="credential"),
        pytest.param({"payloadTemplate": "{"}, "payloadTemplate", id="template"),
    ],
)
def test_an_update_with_a_bad_field_is_refused_naming_it_and_changes_nothing(
    open_server: Server, org: str, change: dict[str, Any], field: str
) -> None:
    admin = open_server.key(org, "admin")
    created = _create(open_server, admin).ok()["createWebhook"]
    result = open_server.gql(admin, UPDATE_WEBHOOK, {"id": created["id"], "input": change})
    _assert_refused(result, field)
    after = open_server.gql(admin, WEBHOOK, {"id": created["id"]}).ok()["webhook"]
    assert after == created


@pytest.mark.parametrize("field", ["name", "eventTypes", "targetUrl", "method"])
def test_an_update_that_sets_a_required_field_to_null_is_refused_naming_it(
    open_server: Server, org: str, field: str
) -> None:
    admin = open_server.key(org, "admin")
    created = _create(open_server, admin).ok()["createWebhook"]
    result = open_server.gql(admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {field: None}})
    _assert_refused(result, field)
    assert open_server.gql(admin, WEBHOOK, {"id": created["id"]}).ok()["webhook"] == created


def test_a_good_update_after_a_refused_one_still_applies(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = _create(open_server, admin).ok()["createWebhook"]
    _assert_refused(
        open_server.gql(admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": None}}), "name"
    )
    updated = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": "Renamed"}}
    ).ok()["updateWebhook"]
    assert updated["name"] == "Renamed"
    assert updated["version"] == created["version"] + 1


# -- private targets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("http://localhost/", id="localhost"),
        pytest.param("http://127.0.0.1/", id="loopback-dotted-quad"),
        pytest.param("http://[::1]/", id="ipv6-loopback"),
        pytest.param("http://0x7f000001/", id="loopback-as-hexadecimal-integer"),
        pytest.param("http://2130706433/", id="loopback-as-decimal-integer"),
        pytest.param("http://0177.0.0.1/", id="loopback-with-octal-part"),
        pytest.param("http://127.1/", id="loopback-in-two-parts"),
        pytest.param("http://10.0.0.5/", id="private-10"),
        pytest.param("http://192.168.1.1/", id="private-192-168"),
        pytest.param("http://172.16.0.1/", id="private-172-16"),
        pytest.param("http://169.254.169.254/latest/meta-data", id="cloud-metadata"),
        pytest.param("http://[fd00:ec2::254]/", id="ipv6-cloud-metadata"),
        pytest.param("http://0.0.0.0/", id="unspecified"),
        pytest.param("http://[::ffff:127.0.0.1]/", id="ipv4-mapped-loopback"),
        pytest.param("http://sub.localhost/", id="localhost-subdomain"),
        pytest.param("http://LOCALHOST./", id="localhost-upper-case-with-trailing-dot"),
        pytest.param("https://127.0.0.1:8443/hooks", id="loopback-https-with-port"),
    ],
)
def test_a_private_or_loopback_target_is_refused_by_the_default_policy(
    strict_server: Server, org: str, target: str
) -> None:
    admin = strict_server.key(org, "admin")
    _assert_create_refused(strict_server, admin, _create(strict_server, admin, target), "targetUrl")


def test_a_target_name_that_resolves_to_loopback_is_refused_by_the_default_policy(
    strict_server: Server, org: str
) -> None:
    host = socket.gethostname()
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError:
        pytest.skip(f"this machine's name {host!r} does not resolve")
    if not any(address.startswith("127.") or address == "::1" for address in addresses):
        pytest.skip(f"this machine's name {host!r} does not resolve to loopback: {addresses}")
    admin = strict_server.key(org, "admin")
    _assert_create_refused(
        strict_server, admin, _create(strict_server, admin, f"http://{host}/"), "targetUrl"
    )


def test_an_update_to_a_private_target_is_refused_by_the_default_policy(
    strict_server: Server, org: str
) -> None:
    admin = strict_server.key(org, "admin")
    created = _create(strict_server, admin, "https://93.184.215.14/hook").ok()["createWebhook"]
    result = strict_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"targetUrl": "http://2130706433/"}}
    )
    _assert_refused(result, "targetUrl")


def test_a_public_address_literal_is_accepted_by_the_default_policy(strict_server: Server, org: str) -> None:
    admin = strict_server.key(org, "admin")
    created = _create(strict_server, admin, "https://93.184.215.14/hook").ok()["createWebhook"]
    assert created["targetUrl"] == "https://93.184.215.14/hook"


def test_a_loopback_target_is_accepted_when_private_targets_are_allowed(
    open_server: Server, org: str
) -> None:
    admin = open_server.key(org, "admin")
    created = _create(open_server, admin, "http://127.0.0.1:9/").ok()["createWebhook"]
    assert created["targetUrl"] == "http://127.0.0.1:9/"


# -- duplicates ---------------------------------------------------------------------------------------

DUPLICATE = {
    "eventTypes": ["alert.activated", "ticket.created"],
    "method": "PUT",
    "filters": [{"conditions": [{"field": "severity", "operator": "GTE", "values": [3]}]}],
    "payloadTemplate": '{"event": "{{event_id}}", "type": "{{event_type}}"}',
}


def _duplicate_input(target: str = TARGET, **overrides: object) -> dict[str, object]:
    return webhook_input(target, **{**DUPLICATE, **overrides})


def test_a_second_webhook_with_the_same_configuration_is_a_conflict(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    open_server.gql(admin, CREATE_WEBHOOK, {"input": _duplicate_input()}).ok()
    again = _duplicate_input(name="Another name", eventTypes=["ticket.created", "alert.activated"])
    result = open_server.gql(admin, CREATE_WEBHOOK, {"input": again})
    assert result.codes == ["CONFLICT"], result.errors
    assert _count(open_server, admin) == 1


def test_a_duplicate_is_created_when_allowed_explicitly(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    first = open_server.gql(admin, CREATE_WEBHOOK, {"input": _duplicate_input()}).ok()["createWebhook"]
    second = open_server.gql(admin, CREATE_WEBHOOK, {"input": _duplicate_input(allowDuplicate=True)}).ok()[
        "createWebhook"
    ]
    assert second["id"] != first["id"]
    assert _count(open_server, admin) == 2


def test_the_same_configuration_to_another_target_is_not_a_duplicate(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    open_server.gql(admin, CREATE_WEBHOOK, {"input": _duplicate_input()}).ok()
    other = _duplicate_input("https://example.com/other-hooks")
    open_server.gql(admin, CREATE_WEBHOOK, {"input": other}).ok()
    assert _count(open_server, admin) == 2


def test_a_deleted_webhooks_configuration_can_be_used_again(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    first = open_server.gql(admin, CREATE_WEBHOOK, {"input": _duplicate_input()}).ok()["createWebhook"]
    assert open_server.gql(admin, DELETE_WEBHOOK, {"id": first["id"]}).ok() == {"deleteWebhook": True}
    second = open_server.gql(admin, CREATE_WEBHOOK, {"input": _duplicate_input()}).ok()["createWebhook"]
    assert second["id"] != first["id"]
    assert _count(open_server, admin) == 1


# -- what error messages never show -------------------------------------------------------------------

LEAK_MARKERS = ("traceback", "sqlite", "select ", "/work/", 'file "', "s3cr3t-pass")


def _leaks(result: GraphQLResult) -> list[str]:
    """The markers of a stack trace, SQL, a file path or the test's password found in the errors."""
    shown = json.dumps(result.errors, ensure_ascii=False).lower()
    return [marker for marker in LEAK_MARKERS if marker in shown]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"name": "n" * 10_000}, id="huge-name"),
        pytest.param({"targetUrl": "http://[::1"}, id="unclosed-bracket"),
        pytest.param({"targetUrl": "http://example.com:99999/"}, id="port-out-of-range"),
        pytest.param({"targetUrl": "http://user:s3cr3t-pass@example.com/"}, id="password-in-url"),
        pytest.param({"targetUrl": "https://example.com/" + "p" * 5000}, id="huge-url"),
        pytest.param({"eventTypes": ["e" * 300, ""]}, id="bad-event-types"),
        pytest.param({"headers": [{"name": "X-Long", "value": "v" * 5000}]}, id="huge-header-value"),
        pytest.param({"headers": [{"name": "X-A", "value": "1"}] * 60}, id="too-many-headers"),
        pytest.param({"credentialId": "'; --"}, id="quote-in-credential-id"),
        pytest.param({"payloadTemplate": '{"a": '}, id="truncated-template"),
        pytest.param({"filters": [{"conditions": []}]}, id="empty-filter-group"),
        pytest.param(
            {"filters": [{"conditions": [{"field": " ", "operator": "EQ", "values": [1]}]}]},
            id="blank-filter-field",
        ),
    ],
)
def test_a_refusal_never_shows_a_traceback_sql_a_path_or_a_secret(
    open_server: Server, org: str, overrides: dict[str, object]
) -> None:
    admin = open_server.key(org, "admin")
    result = open_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(TARGET, **overrides)})
    assert result.errors, result
    assert set(result.codes) <= CONTRACT_CODES, result.errors
    assert not _leaks(result), result.errors
    assert _count(open_server, admin) == 0


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"rateLimitPerSecond": 2**31}, id="rate-over-32-bit-int"),
        pytest.param({"method": "FETCH"}, id="unknown-method"),
        pytest.param({"name": 5}, id="number-for-name"),
    ],
)
def test_a_value_its_graphql_type_cannot_hold_is_bad_user_input_not_an_internal_error(
    open_server: Server, org: str, overrides: dict[str, object]
) -> None:
    admin = open_server.key(org, "admin")
    result = open_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(TARGET, **overrides)})
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    assert result.fields, result.errors
    assert not _leaks(result), result.errors
    assert _count(open_server, admin) == 0


@pytest.mark.parametrize("target", ["http://-1/", "http://-1.0.0.1/", "http://1.-1/"])
def test_a_host_that_looks_like_a_negative_number_is_answered_without_an_internal_error(
    open_server: Server, org: str, target: str
) -> None:
    """Not an address to any resolver: a name, which may be accepted, or refused naming targetUrl."""
    admin = open_server.key(org, "admin")
    result = _create(open_server, admin, target)
    if result.errors:
        _assert_create_refused(open_server, admin, result, "targetUrl")
    else:
        assert result.data["createWebhook"]["targetUrl"] == target
