"""Publishing without GraphQL (`POST /events`, `POST /events/{type}`) through a real `hookline serve`: a
source system's plain POST, with Bearer or Basic, delivered to a real receiver; the same roles, limits and
idempotency as `publishEvent`; every refusal a JSON error with the contract's status; never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.queries import CREATE_WEBHOOK, PUBLISH, webhook_input
from tests.support import Receiver, Server, running_server, wait_until
from tests.test_fuzz import json_values, texts

MAX_PAYLOAD = 2048
MAX_REQUEST = 64 * 1024
KNOWN_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT"}
LEAKS = ("Traceback", "sqlite", "SELECT ", "/work/", ".py")


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])

    @property
    def fields(self) -> list[str]:
        return [f["field"] for f in self.body["error"].get("fields", [])]


def post(
    server: Server,
    path: str,
    body: bytes | str | Any,
    *,
    key: str | None = None,
    basic: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One POST as a source system sends it (aiohttp, like curl): JSON unless told otherwise."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    if basic is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"source-system:{basic}".encode()).decode()
    data = body if isinstance(body, bytes | str) else json.dumps(body)

    async def send() -> Answer:
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.url + path, data=data, headers=sent) as response,
        ):
            raw = await response.read()
            assert response.headers.get("content-type", "").startswith("application/json"), raw[:300]
            return Answer(response.status, json.loads(raw))

    return asyncio.run(send())


def subscribe(server: Server, admin: str, receiver: Receiver, event_type: str) -> str:
    spec = webhook_input(receiver.url + "/" + event_type, eventTypes=[event_type])
    return str(server.gql(admin, CREATE_WEBHOOK, {"input": spec}).ok()["createWebhook"]["id"])


def delivered(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.wait_for(count)]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Embedded, with small limits: a 2 KiB payload, a 64 KiB request."""
    with running_server(
        tmp_path_factory.mktemp("limited"),
        "embedded",
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        HOOKLINE_MAX_PAYLOAD_BYTES=str(MAX_PAYLOAD),
        HOOKLINE_MAX_REQUEST_BYTES=str(MAX_REQUEST),
    ) as server:
        yield server


# -- published and delivered ------------------------------------------------------------------------


def test_a_payload_posted_to_its_type_with_a_bearer_key_is_delivered(
    open_server: Server, org: str, receiver: Receiver
) -> None:
    admin, publisher = open_server.key(org, "admin"), open_server.key(org, "publisher")
    subscribe(open_server, admin, receiver, "ticket.created")

    answer = post(open_server, "/events/ticket.created", {"ticket": "INC-1", "priority": 2}, key=publisher)

    assert answer.status == 202, answer.body
    assert answer.body == {"eventId": answer.body["eventId"], "duplicate": False}
    (body,) = delivered(receiver, 1)
    assert body["id"] == answer.body["eventId"]
    assert body["type"] == "ticket.created"
    assert body["data"] == {"ticket": "INC-1", "priority": 2}


def test_a_source_that_offers_only_a_user_and_password_publishes_with_the_key_as_password(
    open_server: Server, org: str, receiver: Receiver
) -> None:
    admin, publisher = open_server.key(org, "admin"), open_server.key(org, "publisher")
    subscribe(open_server, admin, receiver, "change.approved")
    event = {"type": "change.approved", "payload": {"change": "CHG-7"}, "occurredAt": "2026-12-01T10:00:00Z"}

    answer = post(open_server, "/events", event, basic=publisher)

    assert answer.status == 202, answer.body
    (body,) = delivered(receiver, 1)
    assert body["id"] == answer.body["eventId"]
    assert body["data"] == {"change": "CHG-7"}
    assert body["occurredAt"].startswith("2026-12-01T10:00:00")


def test_a_list_of_events_is_answered_in_order_and_each_is_delivered(
    limited: Server, org: str, receiver: Receiver
) -> None:
    admin, publisher = limited.key(org, "admin"), limited.key(org, "publisher")
    subscribe(limited, admin, receiver, "list.item")
    events = [{"type": "list.item", "payload": {"n": n}} for n in range(3)]

    answer = post(limited, "/events", events, key=publisher)

    assert answer.status == 202, answer.body
    assert [a["duplicate"] for a in answer.body] == [False, False, False]
    bodies = delivered(receiver, 3)
    by_id = {b["id"]: b["data"]["n"] for b in bodies}
    assert [by_id[a["eventId"]] for a in answer.body] == [0, 1, 2]


def test_an_idempotency_key_makes_a_repeat_a_duplicate_on_every_path_and_delivers_once(
    limited: Server, org: str, receiver: Receiver
) -> None:
    admin, publisher = limited.key(org, "admin"), limited.key(org, "publisher")
    subscribe(limited, admin, receiver, "repeat.me")

    first = post(limited, "/events/repeat.me", {"n": 1}, key=publisher, headers={"Idempotency-Key": "k-1"})
    again = post(limited, "/events/repeat.me", {"n": 1}, key=publisher, headers={"Idempotency-Key": "k-1"})
    in_body = post(
        limited, "/events", {"type": "repeat.me", "payload": {"n": 1}, "idempotencyKey": "k-1"}, key=publisher
    )
    graphql = limited.gql(
        publisher, PUBLISH, {"input": {"type": "repeat.me", "payload": {"n": 1}, "idempotencyKey": "k-1"}}
    ).ok()["publishEvent"]

    assert first.status == again.status == in_body.status == 202
    assert first.body["duplicate"] is False
    assert again.body == in_body.body == {"eventId": first.body["eventId"], "duplicate": True}
    assert graphql == again.body
    # Published after the repeats: once it has arrived, a delivery of a repeat would have too.
    assert post(limited, "/events/repeat.me", {"n": 2}, key=publisher).status == 202
    assert sorted(b["data"]["n"] for b in delivered(receiver, 2)) == [1, 2]
    assert len(receiver.requests) == 2


def test_events_posted_are_counted_in_metrics_like_graphql_publishes(limited: Server, org: str) -> None:
    publisher = limited.key(org, "publisher")

    def published() -> float:
        match = re.search(
            r"^hookline_events_published_total (\S+)$", get_text(limited.url + "/metrics"), re.M
        )
        return float(match.group(1)) if match else 0.0

    before = published()
    assert post(limited, "/events", [{"type": "counted", "payload": {}}] * 2, key=publisher).status == 202
    assert post(limited, "/events/counted", {}, key=publisher).status == 202
    wait_until(lambda: published() >= before + 3)


def test_a_key_used_only_by_plain_http_shows_when_it_was_last_used(limited: Server, org: str) -> None:
    admin, publisher = limited.key(org, "admin"), limited.key(org, "publisher")
    keys = "{ apiKeys { role lastUsedAt } }"
    assert post(limited, "/events/used", {}, basic=publisher).status == 202

    def publisher_used() -> bool:
        listed = limited.gql(admin, keys).ok()["apiKeys"]
        return any(k["role"] == "PUBLISHER" and k["lastUsedAt"] for k in listed)

    wait_until(publisher_used, timeout=10)


def get_text(url: str) -> str:
    async def get() -> str:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return await response.text()

    return asyncio.run(get())


# -- refused, each with its status and a JSON error ---------------------------------------------------


def test_without_a_working_key_it_is_401(limited: Server, org: str) -> None:
    publisher = limited.key(org, "publisher")
    refused = [
        post(limited, "/events/x", {}),
        post(limited, "/events/x", {}, key="hl_not-a-key"),
        post(limited, "/events/x", {}, basic="hl_not-a-key"),
        post(limited, "/events/x", {}, headers={"Authorization": "Basic !!not-base64!!"}),
        post(limited, "/events/x", {}, headers={"Authorization": f"Token {publisher}"}),
        # The key as the user name, no password: the password is what is read.
        post(
            limited,
            "/events/x",
            {},
            headers={"Authorization": "Basic " + base64.b64encode(f"{publisher}:".encode()).decode()},
        ),
    ]
    assert [(a.status, a.code) for a in refused] == [(401, "UNAUTHENTICATED")] * len(refused)
    assert "Basic" in refused[0].body["error"]["message"]


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_a_key_whose_role_may_not_publish_is_403(limited: Server, org: str, role: str) -> None:
    key = limited.key(org, role)
    for answer in (
        post(limited, "/events/x", {}, key=key),
        post(limited, "/events", {"type": "x", "payload": {}}, basic=key),
    ):
        assert (answer.status, answer.code) == (403, "FORBIDDEN"), answer.body


def test_a_revoked_key_is_401_within_seconds(limited: Server) -> None:
    org = f"revoked-{uuid.uuid4().hex[:10]}"
    publisher = limited.key(org, "publisher")
    assert post(limited, "/events/x", {}, key=publisher).status == 202
    listed = limited.cli("keys", "list", "--org", org).stdout.split("\t")
    assert limited.cli("keys", "revoke", listed[0]).returncode == 0

    wait_until(lambda: post(limited, "/events/x", {}, key=publisher).status == 401, timeout=5)
    assert post(limited, "/events/x", {}, basic=publisher).code == "UNAUTHENTICATED"


def test_a_body_that_is_not_json_is_415_or_400(limited: Server, org: str) -> None:
    publisher = limited.key(org, "publisher")
    text = post(limited, "/events/x", "a=1", key=publisher, headers={"Content-Type": "text/plain"})
    form = post(
        limited,
        "/events",
        "a=1",
        key=publisher,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    broken = post(limited, "/events/x", '{"a": ', key=publisher)
    empty = post(limited, "/events/x", b"", key=publisher)

    assert (text.status, text.code, form.status) == (415, "BAD_USER_INPUT", 415)
    assert "text/plain" in text.body["error"]["message"]
    assert [(a.status, a.code, a.fields) for a in (broken, empty)] == [(400, "BAD_USER_INPUT", ["body"])] * 2


def test_every_problem_of_a_body_of_the_wrong_shape_is_named_at_once(limited: Server, org: str) -> None:
    publisher = limited.key(org, "publisher")
    answers = {
        "not an object": post(limited, "/events", "42", key=publisher),
        "one event": post(
            limited,
            "/events",
            {"type": 7, "idempotencyKey": 3, "occurredAt": "yesterday", "colour": "red"},
            key=publisher,
        ),
        "a list": post(
            limited,
            "/events",
            [{"type": "ok", "payload": {}}, "x", {"type": "a", "payload": []}],
            key=publisher,
        ),
        "empty list": post(limited, "/events", [], key=publisher),
        "too many": post(limited, "/events", [{"type": "a", "payload": {}}] * 501, key=publisher),
        "payload not an object": post(limited, "/events/x", [1, 2], key=publisher),
        "no type": post(limited, "/events/", {}, key=publisher),
        "empty idempotency key": post(
            limited, "/events/x", {}, key=publisher, headers={"Idempotency-Key": " "}
        ),
        "long idempotency key": post(
            limited, "/events/x", {}, key=publisher, headers={"Idempotency-Key": "k" * 201}
        ),
    }
    fields = {name: (a.status, a.code, sorted(a.fields)) for name, a in answers.items()}
    assert fields == {
        "not an object": (400, "BAD_USER_INPUT", ["body"]),
        "one event": (400, "BAD_USER_INPUT", ["colour", "idempotencyKey", "occurredAt", "payload", "type"]),
        "a list": (400, "BAD_USER_INPUT", ["input[1]"]),
        "empty list": (400, "BAD_USER_INPUT", ["input"]),
        "too many": (400, "BAD_USER_INPUT", ["input"]),
        "payload not an object": (400, "BAD_USER_INPUT", ["payload"]),
        "no type": (400, "BAD_USER_INPUT", ["type"]),
        "empty idempotency key": (400, "BAD_USER_INPUT", ["Idempotency-Key"]),
        "long idempotency key": (400, "BAD_USER_INPUT", ["Idempotency-Key"]),
    }
    valid_list_but_bad_payload = post(
        limited, "/events", [{"type": "ok", "payload": {}}, {"type": "a", "payload": []}], key=publisher
    )
    assert valid_list_but_bad_payload.fields == ["input[1].payload"]


def test_a_body_over_the_request_cap_or_a_payload_over_the_payload_cap_is_413(
    limited: Server, org: str
) -> None:
    publisher = limited.key(org, "publisher")
    big_body = post(limited, "/events/x", {"pad": "x" * MAX_REQUEST}, key=publisher)
    big_payload = post(limited, "/events/x", {"pad": "x" * MAX_PAYLOAD}, key=publisher)
    in_a_list = post(
        limited,
        "/events",
        [{"type": "x", "payload": {}}, {"type": "x", "payload": {"pad": "x" * MAX_PAYLOAD}}],
        key=publisher,
    )

    assert (big_body.status, big_body.code, big_body.fields) == (413, "BAD_USER_INPUT", ["body"])
    assert (big_payload.status, big_payload.code, big_payload.fields) == (413, "BAD_USER_INPUT", ["payload"])
    assert (in_a_list.status, in_a_list.fields) == (413, ["input[1].payload"])
    assert "HOOKLINE_MAX_PAYLOAD_BYTES" in big_payload.body["error"]["message"]


# -- never a 500, whatever the body -----------------------------------------------------------------

FUZZ = settings(
    max_examples=int(os.environ.get("HOOKLINE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
HEADER_TEXT = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")


def bodies() -> st.SearchStrategy[bytes]:
    """JSON of any shape, event-like objects with hostile fields, lists of them, and raw bytes."""
    strings = texts(surrogates=True)
    values = json_values(strings)
    event = st.fixed_dictionaries(
        {},
        optional={
            "type": values,
            "payload": values,
            "idempotencyKey": values,
            "occurredAt": st.one_of(values, st.datetimes().map(lambda d: d.isoformat())),
        },
    )
    as_json = st.one_of(values, event, st.lists(event, max_size=4)).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    escaped = st.one_of(values, event).map(lambda v: json.dumps(v).encode())  # \ud800 as an escape
    # Events that pass the shape checks, so that what follows them is fuzzed too.
    plausible = st.fixed_dictionaries(
        {"type": strings, "payload": st.dictionaries(strings, values, max_size=4)},
        optional={"idempotencyKey": strings, "occurredAt": st.datetimes().map(lambda d: d.isoformat())},
    )
    well_formed = st.one_of(plausible, st.lists(plausible, max_size=3), st.dictionaries(strings, values)).map(
        lambda v: json.dumps(v).encode()
    )
    return st.one_of(as_json, escaped, well_formed, st.binary(max_size=200))


@pytest.mark.parametrize("path", ["/events/%0A0", "/events/a%0Ab", "/events/%0D%0A"])
def test_a_type_with_a_line_break_is_answered_in_json_not_a_plain_404(
    limited: Server, org: str, path: str
) -> None:
    # Found by the fuzz below: Starlette's `{type:path}` stops at a line break.
    answer = post(limited, path, {}, key=limited.key(org, "publisher"))
    assert answer.status in (202, 400), answer.body
    if answer.status == 400:
        assert answer.code == "BAD_USER_INPUT", answer.body


def test_no_body_path_or_header_gets_a_500_or_leaks(limited: Server) -> None:
    org = f"fuzz-{uuid.uuid4().hex[:10]}"
    publisher = limited.key(org, "publisher")
    statuses: dict[int, int] = {}

    @FUZZ
    @given(
        path=st.one_of(
            st.just("/events"),
            st.text(max_size=30).map(lambda t: "/events/" + quote(t, safe="")),
            st.sampled_from(["/events/", "/events/a/b", "/events/%00", "/events/%ff%fe"]),
        ),
        body=bodies(),
        content_type=st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain"]),
        idempotency_key=st.one_of(st.none(), st.text(HEADER_TEXT, max_size=300)),
        basic=st.booleans(),
    )
    def run(path: str, body: bytes, content_type: str, idempotency_key: str | None, basic: bool) -> None:
        headers = {"Content-Type": content_type}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        answer = post(
            limited,
            path,
            body,
            key=None if basic else publisher,
            basic=publisher if basic else None,
            headers=headers,
        )
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        assert answer.status in (202, 400, 413, 415), answer.body
        if answer.status != 202:
            assert answer.code in KNOWN_CODES, answer.body
            text = json.dumps(answer.body)
            for leak in LEAKS:
                assert leak not in text or leak.encode() in body, (leak, answer.body)

    run()
    assert statuses.get(202), statuses
    assert statuses.get(400), statuses
    print(f"statuses: {dict(sorted(statuses.items()))}")


def test_the_fuzzed_server_still_publishes(limited: Server, org: str) -> None:
    assert post(limited, "/events/after.fuzz", {"ok": True}, key=limited.key(org, "publisher")).status == 202


def test_the_key_shown_in_an_error_is_never_the_one_sent(limited: Server, org: str) -> None:
    publisher = limited.key(org, "publisher")
    wrong = publisher[:-4] + "zzzz"
    answer = post(limited, "/events/x", {}, basic=wrong)
    assert answer.status == 401
    assert wrong not in json.dumps(answer.body)
    assert publisher not in limited.output()
