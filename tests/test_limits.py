"""Every limit of the gateway, each at its boundary: query depth, aliases, tokens, page size, request body,
event payload and batch size; a refused request is BAD_USER_INPUT, never a 500 or a partial success."""

from __future__ import annotations

import contextlib
import http.client
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from graphql.language import Lexer, Source, TokenKind

from domain.events import DEFAULT_MAX_PAYLOAD, MAX_BATCH
from domain.views import MAX_PAGE
from gateway.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from hookline.settings import Settings
from tests.support import GraphQLResult, Server, server_env

SMALL_PAYLOAD = 2048
SMALL_REQUEST = 64 * 1024  # the least HOOKLINE_MAX_REQUEST_BYTES accepts

PUBLISH = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }"
PUBLISH_MANY = (
    "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId duplicate } }"
)


@dataclass(frozen=True)
class Keys:
    admin: str
    publisher: str


@pytest.fixture(scope="module")
def keys(strict_server: Server) -> Keys:
    org = f"limits-{uuid.uuid4().hex[:12]}"
    return Keys(admin=strict_server.key(org, "admin"), publisher=strict_server.key(org, "publisher"))


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Embedded, with a 2 KiB payload limit and the least request body cap the settings allow."""
    server = Server(
        directory=tmp_path_factory.mktemp("small-limits"),
        env=server_env(
            HOOKLINE_MAX_PAYLOAD_BYTES=str(SMALL_PAYLOAD), HOOKLINE_MAX_REQUEST_BYTES=str(SMALL_REQUEST)
        ),
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


def refused(result: GraphQLResult, message_part: str) -> None:
    """One BAD_USER_INPUT error (among possibly others, all with known codes) saying `message_part`."""
    assert result.data is None or all(v is None for v in result.data.values()), result
    assert result.errors, result
    assert set(result.codes) <= {"BAD_USER_INPUT"}, result.errors
    assert any(message_part in e["message"] for e in result.errors), result.errors


def not_refused_for(result: GraphQLResult, message_part: str) -> None:
    assert not any(message_part in e.get("message", "") for e in result.errors), result.errors
    assert "INTERNAL_SERVER_ERROR" not in result.codes, result.errors


def post_raw(
    server: Server, key: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/graphql",
            body=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def assert_body_refused(status: int, raw: bytes, cap: int) -> None:
    assert status == 413, (status, raw[:300])
    answer = json.loads(raw)
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [f["field"] for f in error["extensions"]["fields"]] == ["body"]
    assert str(cap) in error["message"]


# -- depth -------------------------------------------------------------------------------------------


def nested_selection(levels: int) -> str:
    """`webhooks { edges { node { f4 { … } } } }`, `levels` selection levels deep in all (the fields
    below `node` do not exist: no field of the schema nests deeper than the limit)."""
    names = ["webhooks", "edges", "node", *[f"f{i}" for i in range(4, levels + 1)]]
    document = names[-1]
    for name in reversed(names[:-1]):
        document = f"{name} {{ {document} }}"
    return "{ " + document + " }"


def test_the_deepest_real_selection_of_the_schema_is_within_the_depth_limit(
    strict_server: Server, keys: Keys
) -> None:
    query = """{ webhooks(first: 1) { edges { node { filters { conditions { field values } } } } }
                 auditLog(first: 1) { edges { node { data } } } }"""
    strict_server.gql(keys.admin, query).ok()


def test_a_query_deeper_than_the_limit_is_refused_before_anything_runs(
    strict_server: Server, keys: Keys
) -> None:
    at_limit = strict_server.gql(keys.admin, nested_selection(MAX_DEPTH + 1))  # depth 10: 11 levels
    over = strict_server.gql(keys.admin, nested_selection(MAX_DEPTH + 2))

    not_refused_for(at_limit, "maximum operation depth")
    assert at_limit.codes  # the unknown fields
    assert set(at_limit.codes) == {"BAD_USER_INPUT"}
    refused(over, f"exceeds maximum operation depth of {MAX_DEPTH}")


def test_fragments_do_not_hide_depth(strict_server: Server, keys: Keys) -> None:
    query = """
      query { webhooks { ...A } }
      fragment A on WebhookConnection { edges { ...B } }
      fragment B on WebhookEdge { node { ...C } }
      fragment C on Webhook { f4 { f5 { f6 { f7 { f8 { f9 { f10 { f11 { f12 } } } } } } } } }
    """
    refused(strict_server.gql(keys.admin, query), f"exceeds maximum operation depth of {MAX_DEPTH}")


def test_a_deep_introspection_query_is_refused(strict_server: Server, keys: Keys) -> None:
    inner = "name"
    for _ in range(6):
        inner = f"name fields {{ name type {{ name ofType {{ {inner} }} }} }}"
    result = strict_server.gql(keys.admin, "{ __schema { types { " + inner + " } } }")

    refused(result, "introspection depth")


# -- aliases -----------------------------------------------------------------------------------------


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


def test_more_aliases_than_the_limit_are_refused(strict_server: Server, keys: Keys) -> None:
    at_limit = strict_server.gql(keys.admin, aliased(MAX_ALIASES)).ok()
    assert len(at_limit) == MAX_ALIASES

    refused(strict_server.gql(keys.admin, aliased(MAX_ALIASES + 1)), f"Allowed: {MAX_ALIASES}")


def test_aliases_on_expensive_fields_are_counted_too(strict_server: Server, keys: Keys) -> None:
    query = "{ " + " ".join(f"w{i}: webhooks(first: 500) {{ totalCount }}" for i in range(100)) + " }"
    refused(strict_server.gql(keys.admin, query), f"Allowed: {MAX_ALIASES}")


# -- tokens ------------------------------------------------------------------------------------------


def count_tokens(document: str) -> int:
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def publish_with_tokens(total: int) -> str:
    """A valid publishEvent of exactly `total` tokens, padded with numbers in the payload."""
    head = 'mutation { publishEvent(input: {type: "limits.tokens", payload: {n: ['
    tail = "]}}) { eventId } }"
    document = head + " ".join(["0"] * (total - count_tokens(head + tail))) + tail
    assert count_tokens(document) == total
    return document


def test_a_document_of_more_tokens_than_the_limit_is_refused_unparsed(
    strict_server: Server, keys: Keys
) -> None:
    at_limit = strict_server.gql(keys.publisher, publish_with_tokens(MAX_TOKENS)).ok()
    assert at_limit["publishEvent"]["eventId"]

    refused(
        strict_server.gql(keys.publisher, publish_with_tokens(MAX_TOKENS + 1)),
        f"more than {MAX_TOKENS} tokens",
    )


# -- page size ---------------------------------------------------------------------------------------

PAGED = {
    "webhooks": "query($first: Int) { webhooks(first: $first) { totalCount edges { cursor } } }",
    "deliveries": "query($first: Int) { deliveries(first: $first) { totalCount edges { cursor } } }",
    "auditLog": "query($first: Int) { auditLog(first: $first) { totalCount edges { cursor } } }",
}


@pytest.mark.parametrize("field", list(PAGED))
def test_a_page_of_up_to_500_is_served(strict_server: Server, keys: Keys, field: str) -> None:
    for first in (1, MAX_PAGE):
        connection = strict_server.gql(keys.admin, PAGED[field], {"first": first}).ok()[field]
        assert len(connection["edges"]) <= first


@pytest.mark.parametrize("first", [MAX_PAGE + 1, 10_000, 0, -1])
@pytest.mark.parametrize("field", list(PAGED))
def test_a_page_size_outside_1_to_500_is_bad_user_input_naming_first(
    strict_server: Server, keys: Keys, field: str, first: int
) -> None:
    result = strict_server.gql(keys.admin, PAGED[field], {"first": first})

    refused(result, "first")
    assert result.fields == ["first"]
    assert str(MAX_PAGE) in result.errors[0]["message"]


def test_a_page_size_beyond_a_graphql_int_is_bad_user_input(strict_server: Server, keys: Keys) -> None:
    result = strict_server.gql(keys.admin, PAGED["webhooks"], {"first": 2**31})
    assert result.codes == ["BAD_USER_INPUT"], result.errors


# -- request body ------------------------------------------------------------------------------------


def test_the_default_request_body_cap_is_16_mib_and_a_larger_declared_body_gets_413(
    strict_server: Server, keys: Keys
) -> None:
    cap = Settings.model_fields["max_request_bytes"].default
    assert cap == 16 * 1024 * 1024
    # Only the headers are sent: the gateway answers from the declared length, reading nothing.
    connection = http.client.HTTPConnection("127.0.0.1", strict_server.port, timeout=30)
    try:
        connection.putrequest("POST", "/graphql")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Authorization", f"Bearer {keys.admin}")
        connection.putheader("Content-Length", str(cap + 1))
        connection.endheaders()
        response = connection.getresponse()
        status, raw = response.status, response.read()
    finally:
        connection.close()

    assert_body_refused(status, raw, cap)


def padded_body(size: int) -> bytes:
    """A valid GraphQL request of exactly `size` bytes (a comment pads the query)."""
    empty = json.dumps({"query": "{ __typename }#"}).encode()
    body = json.dumps({"query": "{ __typename }#" + "x" * (size - len(empty))}).encode()
    assert len(body) == size
    return body


def test_a_body_at_the_cap_is_served_and_one_byte_more_is_413(small_server: Server) -> None:
    key = small_server.key(f"limits-{uuid.uuid4().hex[:8]}", "admin")

    status, raw = post_raw(small_server, key, padded_body(SMALL_REQUEST))
    assert status == 200, raw[:300]
    assert json.loads(raw) == {"data": {"__typename": "Query"}}

    assert_body_refused(*post_raw(small_server, key, padded_body(SMALL_REQUEST + 1)), SMALL_REQUEST)


def test_a_chunked_body_without_a_length_is_cut_off_at_the_cap(small_server: Server) -> None:
    key = small_server.key(f"limits-{uuid.uuid4().hex[:8]}", "admin")
    body = padded_body(SMALL_REQUEST * 2)
    chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))

    connection = http.client.HTTPConnection("127.0.0.1", small_server.port, timeout=30)
    try:
        with contextlib.suppress(OSError):  # the gateway may answer and close before it all was sent
            connection.request(
                "POST",
                "/graphql",
                body=chunks,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
                encode_chunked=True,
            )
        response = connection.getresponse()
        status, raw = response.status, response.read()
    finally:
        connection.close()

    assert_body_refused(status, raw, SMALL_REQUEST)


def test_deeply_nested_json_in_the_body_is_refused_not_a_server_error(
    strict_server: Server, keys: Keys
) -> None:
    """Variables nested deeper than the JSON parser's recursion allows: a client error, not a 500."""
    depth = 100_000
    query = json.dumps(PUBLISH)
    body = (
        f'{{"query": {query}, "variables": {{"input": {{"type": "limits.deep", "payload": {{"a": '
        + "[" * depth
        + "]" * depth
        + "}}}}"
    ).encode()

    status, raw = post_raw(strict_server, keys.publisher, body)

    assert 400 <= status < 500, (status, raw[:300])
    assert b"Traceback" not in raw
    assert b"RecursionError" not in raw
    answer = json.loads(raw)
    assert answer["data"] is None
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]


# -- event payloads and batches ----------------------------------------------------------------------


def payload_of_size(size: int) -> dict[str, Any]:
    """A payload whose compact JSON is exactly `size` bytes."""
    payload = {"x": "a" * (size - len(b'{"x":""}'))}
    assert len(orjson.dumps(payload)) == size
    return payload


def test_a_payload_of_256_kib_is_accepted_and_one_byte_more_is_bad_user_input_naming_payload(
    strict_server: Server, keys: Keys
) -> None:
    assert DEFAULT_MAX_PAYLOAD == 256 * 1024
    assert Settings.model_fields["max_payload_bytes"].default == DEFAULT_MAX_PAYLOAD
    key = uuid.uuid4().hex
    event = {"type": "limits.payload", "payload": payload_of_size(DEFAULT_MAX_PAYLOAD)}

    accepted = strict_server.gql(keys.publisher, PUBLISH, {"input": event}).ok()["publishEvent"]
    assert accepted["eventId"]

    over = {
        "type": "limits.payload",
        "payload": payload_of_size(DEFAULT_MAX_PAYLOAD + 1),
        "idempotencyKey": key,
    }
    result = strict_server.gql(keys.publisher, PUBLISH, {"input": over})

    refused(result, str(DEFAULT_MAX_PAYLOAD))
    assert result.fields == ["payload"]
    # Nothing was stored: the same idempotency key is still new.
    again = {"type": "limits.payload", "payload": {"n": 1}, "idempotencyKey": key}
    repeated = strict_server.gql(keys.publisher, PUBLISH, {"input": again}).ok()["publishEvent"]
    assert repeated["duplicate"] is False


def test_a_megabyte_payload_is_refused_without_trouble(strict_server: Server, keys: Keys) -> None:
    event = {"type": "limits.payload", "payload": payload_of_size(1024 * 1024)}
    result = strict_server.gql(keys.publisher, PUBLISH, {"input": event})

    refused(result, "at most")
    assert result.fields == ["payload"]


def test_one_oversized_payload_refuses_the_whole_batch_naming_it(strict_server: Server, keys: Keys) -> None:
    run = uuid.uuid4().hex
    events = [{"type": "limits.batch", "payload": {"n": i}, "idempotencyKey": f"{run}-{i}"} for i in range(3)]
    events[1]["payload"] = payload_of_size(DEFAULT_MAX_PAYLOAD + 1)

    result = strict_server.gql(keys.publisher, PUBLISH_MANY, {"input": events})

    refused(result, "at most")
    assert result.fields == ["input[1].payload"]
    events[1]["payload"] = {"n": 1}
    stored = strict_server.gql(keys.publisher, PUBLISH_MANY, {"input": events}).ok()["publishEvents"]
    assert [e["duplicate"] for e in stored] == [False, False, False], "part of the refused batch was stored"


def test_a_batch_of_500_events_is_accepted_and_501_is_bad_user_input(
    strict_server: Server, keys: Keys
) -> None:
    def batch(count: int) -> list[dict[str, Any]]:
        return [{"type": "limits.batch", "payload": {"n": i}} for i in range(count)]

    result = strict_server.gql(keys.publisher, PUBLISH_MANY, {"input": batch(MAX_BATCH)})
    stored = result.ok()["publishEvents"]
    assert len(stored) == MAX_BATCH
    assert len({e["eventId"] for e in stored}) == MAX_BATCH

    for count in (MAX_BATCH + 1, 0):
        result = strict_server.gql(keys.publisher, PUBLISH_MANY, {"input": batch(count)})
        refused(result, str(MAX_BATCH))
        assert result.fields == ["input"]


def test_a_server_with_a_2_kib_payload_limit_refuses_3_kib(small_server: Server) -> None:
    publisher = small_server.key(f"limits-{uuid.uuid4().hex[:8]}", "publisher")

    accepted = small_server.gql(
        publisher, PUBLISH, {"input": {"type": "limits.small", "payload": payload_of_size(SMALL_PAYLOAD)}}
    )
    assert accepted.ok()["publishEvent"]["eventId"]

    result = small_server.gql(
        publisher, PUBLISH, {"input": {"type": "limits.small", "payload": payload_of_size(3 * 1024)}}
    )
    refused(result, f"at most {SMALL_PAYLOAD}")
    assert result.fields == ["payload"]
