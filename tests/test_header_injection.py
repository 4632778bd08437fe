"""Header names and values that would split or corrupt the request a webhook sends, refused on save
through the real gateway: a name is an RFC 9110 token matched in full (a `$` lets a final newline
through), and a value holds no control character but HTAB."""

from __future__ import annotations

from typing import Any

import pytest

from tests.queries import CREATE_WEBHOOK, UPDATE_WEBHOOK, WEBHOOK, webhook_input
from tests.support import GraphQLResult, Server

TARGET = "https://93.184.215.14/hooks"  # public, and no name to resolve
CREATE_CREDENTIAL = """
mutation($input: CreateCredentialInput!) { createCredential(input: $input) { id name kind } }
"""
CREDENTIALS = "{ credentials { id } }"


def _create(server: Server, key: str, headers: list[dict[str, str]]) -> GraphQLResult:
    return server.gql(key, CREATE_WEBHOOK, {"input": webhook_input(TARGET, headers=headers)})


def _problems(result: GraphQLResult) -> dict[str, str]:
    """The message of each field named, from the one BAD_USER_INPUT error."""
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    return {f["field"]: f["message"] for e in result.errors for f in e["extensions"]["fields"]}


def _webhooks(server: Server, key: str) -> int:
    return int(server.gql(key, "{ webhooks { totalCount } }").ok()["webhooks"]["totalCount"])


@pytest.mark.parametrize(
    "name",
    ["X-Evil\n", "Authorization\n", "Webhook-Signature\n"],
    ids=["trailing-lf", "authorization-trailing-lf", "reserved-name-trailing-lf"],
)
def test_a_header_name_ending_in_a_line_break_is_refused_naming_it(
    strict_server: Server, org: str, name: str
) -> None:
    admin = strict_server.key(org, "admin")
    problems = _problems(_create(strict_server, admin, [{"name": name, "value": "x"}]))
    assert set(problems) == {"headers[0].name"}, problems
    assert "header name" in problems["headers[0].name"]
    assert _webhooks(strict_server, admin) == 0


@pytest.mark.parametrize(
    "value",
    ["a\x01b", "\x1b[31mred", "a\x7f", "a\x0bb", "a\x0cb", "a\x1fb"],
    ids=["soh", "escape-sequence", "del", "vertical-tab", "form-feed", "unit-separator"],
)
def test_a_header_value_with_a_control_character_is_refused_naming_it(
    strict_server: Server, org: str, value: str
) -> None:
    admin = strict_server.key(org, "admin")
    problems = _problems(_create(strict_server, admin, [{"name": "X-Team", "value": value}]))
    assert set(problems) == {"headers[0].value"}, problems
    assert "control character" in problems["headers[0].value"]
    assert _webhooks(strict_server, admin) == 0


def test_a_header_value_with_a_tab_and_non_ascii_text_is_accepted(strict_server: Server, org: str) -> None:
    admin = strict_server.key(org, "admin")
    headers = [{"name": "X-Team", "value": "ops\tnight shift — équipe"}]
    created = _create(strict_server, admin, headers).ok()["createWebhook"]
    assert created["headers"] == headers


def test_every_bad_header_is_refused_at_once_each_naming_its_position(
    strict_server: Server, org: str
) -> None:
    admin = strict_server.key(org, "admin")
    headers = [
        {"name": "X-Ok", "value": "fine"},
        {"name": "X-Evil\n", "value": "fine"},
        {"name": "X-Also-Ok", "value": "bad\x00"},
        {"name": "X-Escape", "value": "\x1b]8;;"},
    ]
    problems = _problems(_create(strict_server, admin, headers))
    assert set(problems) == {"headers[1].name", "headers[2].value", "headers[3].value"}, problems
    assert _webhooks(strict_server, admin) == 0


@pytest.mark.parametrize(
    "header",
    [{"name": "X-Evil\n", "value": "x"}, {"name": "X-Team", "value": "a\x01"}],
    ids=["name", "value"],
)
def test_an_update_to_a_header_with_a_control_character_is_refused_and_changes_nothing(
    strict_server: Server, org: str, header: dict[str, str]
) -> None:
    admin = strict_server.key(org, "admin")
    created = _create(strict_server, admin, [{"name": "X-Team", "value": "ops"}]).ok()["createWebhook"]
    result = strict_server.gql(admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"headers": [header]}})
    field = "headers[0].name" if header["name"] != "X-Team" else "headers[0].value"
    assert set(_problems(result)) == {field}
    assert strict_server.gql(admin, WEBHOOK, {"id": created["id"]}).ok()["webhook"] == created


@pytest.mark.parametrize(
    ("credential", "fields"),
    [
        pytest.param(
            {"kind": "HEADER", "headerName": "X-Api-Key", "headerValue": "s3cr3t-value\x01"},
            {"headerValue"},
            id="header-value",
        ),
        pytest.param(
            {"kind": "HEADER", "headerName": "X-Api-Key\n", "headerValue": "s3cr3t\x7fvalue"},
            {"headerName", "headerValue"},
            id="header-name-and-value-at-once",
        ),
        pytest.param({"kind": "BEARER", "token": "t0ken-\x1b[0m-value"}, {"token"}, id="bearer-token"),
    ],
)
def test_a_credential_header_with_a_control_character_is_refused_naming_each_field(
    strict_server: Server, org: str, credential: dict[str, Any], fields: set[str]
) -> None:
    admin = strict_server.key(org, "admin")
    result = strict_server.gql(admin, CREATE_CREDENTIAL, {"input": {"name": "Key", **credential}})
    problems = _problems(result)
    assert set(problems) == fields, problems
    assert not any("s3cr3t" in m or "t0ken" in m for m in problems.values()), problems
    assert strict_server.gql(admin, CREDENTIALS).ok()["credentials"] == []
