"""`publishEvent` the short way (gateway/prepared.py): which documents take it, and, through a real
`hookline serve`, that every answer it gives is the one Strawberry's execution gives to the same request.

Strawberry answers a document too long to be examined (a trailing comment is enough: locations do not
move), so each request is sent twice, short and padded, and the two answers must be equal."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from gateway.prepared import MAX_QUERY_CHARS, prepare
from gateway.schema import LIMIT_RULES, build_schema
from tests.support import Server

SCHEMA = build_schema()._schema
PUBLISH = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }"
ALIASED = """mutation Pub($e: PublishEventInput!) {
  p: publishEvent(input: $e) { __typename id: eventId duplicate eventId }
}"""


@pytest.mark.parametrize(
    "document",
    [
        PUBLISH,
        ALIASED,
        "mutation($i: PublishEventInput!) { publishEvent(input: $i) { duplicate } }",
    ],
)
def test_a_lone_publish_event_of_a_variable_is_prepared(document: str) -> None:
    prepared = prepare(SCHEMA, LIMIT_RULES, document)
    assert prepared is not None
    assert prepared.key in ("publishEvent", "p")


@pytest.mark.parametrize(
    "document",
    [
        'mutation { publishEvent(input: {type: "a", payload: {}}) { eventId } }',  # a literal, not a variable
        "mutation($i: PublishEventInput) { publishEvent(input: $i) { eventId } }",  # nullable
        "mutation($i: PublishEventInput!) { publishEvent(input: $i) { eventId } a: publishEvent(input: $i) "
        "{ eventId } }",  # two fields
        "mutation($i: PublishEventInput!) { publishEvent(input: $i) { ...F } } "
        "fragment F on PublishedEvent { eventId }",
        "mutation($i: PublishEventInput!, $s: Boolean!) { publishEvent(input: $i) @include(if: $s) "
        "{ eventId } }",
        "mutation($i: PublishEventInput!) { publishEvent(input: $i) { eventId unknown } }",  # invalid
        "mutation($i: PublishEventInput!) { publishEvent(input: $i) { eventId } }"
        " mutation B($i: PublishEventInput!) { publishEvent(input: $i) { eventId } }",
        "query { eventTypes { name } }",
        "mutation($i: [PublishEventInput!]!) { publishEvents(input: $i) { eventId } }",
        "mutation($i: PublishEventInput!) { publishEvent(input: $i) { eventId }",  # does not parse
    ],
)
def test_anything_else_goes_through_strawberry(document: str) -> None:
    assert prepare(SCHEMA, LIMIT_RULES, document) is None


def send(server: Server, body: Any, key: str | None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        server.url + "/graphql", json.dumps(body).encode(), headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def both_ways(server: Server, body: dict[str, Any], key: str | None) -> tuple[int, bytes]:
    """The answer short (prepared) and padded (Strawberry); they must be the same bytes."""
    padded = {**body, "query": body["query"] + "\n#" + "x" * MAX_QUERY_CHARS}
    short, long = send(server, body, key), send(server, padded, key)
    assert short == long, f"prepared: {short!r}\nstrawberry: {long!r}"
    return short


def test_every_refusal_is_the_answer_strawberry_gives(strict_server: Server) -> None:
    org = f"prepared-{uuid.uuid4().hex[:10]}"
    publisher, viewer = strict_server.key(org, "publisher"), strict_server.key(org, "viewer")
    event = {"type": "prepared.test", "payload": {"a": 1}}
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"query": PUBLISH, "variables": {"input": event}}, viewer),  # FORBIDDEN
        ({"query": PUBLISH, "variables": {"input": event}}, None),  # UNAUTHENTICATED
        ({"query": PUBLISH, "variables": {"input": event}}, "hl_unknown"),
        ({"query": PUBLISH, "variables": {"input": {"type": " ", "payload": [1]}}}, publisher),
        ({"query": ALIASED, "variables": {"e": {**event, "idempotencyKey": ""}}}, publisher),
        ({"query": PUBLISH, "variables": {"input": {"type": "x"}}}, publisher),  # does not coerce
        ({"query": PUBLISH, "variables": {"input": {**event, "occurredAt": "soon"}}}, publisher),
        ({"query": PUBLISH, "variables": {}}, publisher),
        ({"query": PUBLISH}, publisher),
        ({"query": ALIASED, "variables": {"e": event}, "operationName": "Other"}, publisher),
    ]
    answers = [both_ways(strict_server, body, key) for body, key in cases]
    codes = [
        [e["extensions"]["code"] for e in json.loads(raw)["errors"]] if status == 200 else status
        for status, raw in answers
    ]
    assert codes[:5] == [["FORBIDDEN"], ["UNAUTHENTICATED"], ["UNAUTHENTICATED"]] + [["BAD_USER_INPUT"]] * 2
    fields = json.loads(answers[3][1])["errors"][0]["extensions"]["fields"]
    assert [f["field"] for f in fields] == ["type", "payload"]


def test_a_published_event_is_answered_as_strawberry_answers_it(strict_server: Server) -> None:
    publisher = strict_server.key(f"prepared-{uuid.uuid4().hex[:10]}", "publisher")
    event = {"type": "prepared.test", "payload": {"a": 1}, "idempotencyKey": "once"}
    variables = {"e": {**event, "occurredAt": "2026-12-01T10:00:00+01:00"}}

    first = send(strict_server, {"query": ALIASED, "variables": variables, "operationName": "Pub"}, publisher)
    status, raw = both_ways(strict_server, {"query": ALIASED, "variables": variables}, publisher)

    answer = json.loads(first[1])["data"]["p"]
    assert list(answer) == ["__typename", "id", "duplicate", "eventId"]
    assert answer["__typename"] == "PublishedEvent"
    assert answer["id"] == answer["eventId"]
    assert answer["duplicate"] is False
    assert status == 200
    assert json.loads(raw) == {"data": {"p": {**answer, "duplicate": True}}}
