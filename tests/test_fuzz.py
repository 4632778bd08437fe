"""Fuzzing the real gateway: operations generated from the schema, with random and hostile values.

Every answer must be a GraphQL response — `data`, or errors whose `extensions.code` is one the contract
names — never a 5xx, an INTERNAL_SERVER_ERROR, a stack trace, SQL or a path of the server.

`HOOKLINE_FUZZ_EXAMPLES` sets how many operations each strategy sends (300 by default; `make fuzz`
sends more).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, mutations, queries
from hypothesis_graphql import nodes as gql_nodes

from gateway.schema import build_schema
from tests.queries import CREATE_WEBHOOK, PUBLISH, webhook_input
from tests.support import Server, wait_until

EXAMPLES = int(os.environ.get("HOOKLINE_FUZZ_EXAMPLES", "300"))
KNOWN_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT", "NOT_FOUND", "CONFLICT"}
LEAKS = ("Traceback", "sqlite", "psycopg", "SELECT ", "/work/", ".py")
OTHER_ORG_MARKER = "other-organisation-private-name"
SCHEMA = build_schema().as_str()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)

# Values that have broken parsers, queries, templates, headers and logs before.
NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "\x00\x01\x1f\x7f",
    "\r\nX-Injected: 1",
    "null",
    "undefined",
    "true",
    "0",
    "-1",
    "9" * 40,
    "1e309",
    "NaN",
    "[]",
    "{}",
    '{"a": 1}',
    "\\",
    '"',
    "' OR '1'='1' --",
    '"; DROP TABLE events; --',
    "%s%s%s%n%x",
    "{0}{1}",
    "{{event_id}}",
    "{{a.b.c}} #event_type",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "file:///etc/passwd",
    "http://127.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "https://hooks.invalid/fuzz",
    "alert.activated",
    "a.b",
    "\u202egnp.exe",
    "\ufeff",
    "💥" * 10,
    "a" * 5000,
    "ä" * 300,
    "\ud800",
    "a\udfffb",
]


def graphql_names() -> st.SearchStrategy[str]:
    return st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,12}\Z")


def texts(*, surrogates: bool) -> st.SearchStrategy[str]:
    """Random text and the nasty strings; lone surrogates only where JSON can carry them (variables)."""
    nasty = [s for s in NASTY_STRINGS if surrogates or not any(0xD800 <= ord(c) <= 0xDFFF for c in s)]
    if surrogates:
        alphabet = st.characters(codec=None, exclude_categories=())
    else:
        alphabet = st.characters(codec="utf-8", exclude_categories=["Cs"])
    return st.one_of(st.text(alphabet=alphabet, max_size=40), st.sampled_from(nasty))


# -- what the gateway answers, and the checks every answer passes -------------------------------------


@dataclass
class Fuzzed:
    server: Server
    admin: str
    ids: list[str]
    sent: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def send(
        self, query: str, variables: dict[str, Any] | None = None, *, get: bool = False
    ) -> dict[str, Any]:
        """Sends one operation (POST, or a query by GET in the URL) and checks the answer; returns it."""
        headers = {"Authorization": f"Bearer {self.admin}", "Accept": "application/json"}
        if get:
            parameters = {"query": query, "variables": json.dumps(variables or {})}
            request = urllib.request.Request(
                self.server.url + "/graphql?" + urllib.parse.urlencode(parameters),
                headers=headers,
            )
        else:
            request = urllib.request.Request(
                self.server.url + "/graphql",
                json.dumps({"query": query, "variables": variables or {}}).encode(),
                {**headers, "Content-Type": "application/json"},
                method="POST",
            )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as refused:
            status, raw = refused.code, refused.read()
        self.sent += 1
        text = raw.decode("utf-8", errors="replace")
        sent_text = query + json.dumps(variables or {}, ensure_ascii=False)
        assert status < 500, f"HTTP {status} for {query!r} {variables!r}: {text[:500]}"
        answer = json.loads(raw)
        assert isinstance(answer, dict), text[:500]
        assert "data" in answer or "errors" in answer, text[:500]
        for error in answer.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            self.codes[str(code)] = self.codes.get(str(code), 0) + 1
            assert code in KNOWN_CODES, (
                f"{code} for {query!r} {variables!r}: {error.get('message')!r}; "
                f"the server logged: {self.last_logged_error()}"
            )
        for leak in LEAKS:
            # What the request itself carried may come back (a name, an input echoed in a message).
            if leak not in sent_text:
                assert leak not in text, f"{leak!r} in the answer to {query!r}: {text[:500]}"
        assert OTHER_ORG_MARKER not in text, f"another organisation's webhook leaked: {text[:500]}"
        return answer

    def last_logged_error(self) -> str:
        for line in reversed(self.server.output().splitlines()):
            if '"level": "error"' in line:
                exception = json.loads(line).get("exception", "")
                return str(exception).strip().splitlines()[-1] if exception else line[:300]
        return "nothing"


@pytest.fixture(scope="module")
def fuzzed(strict_server: Server) -> Fuzzed:
    """An admin of an organisation with things to hit: webhooks, a credential, an event and its
    delivery (failing: the target does not resolve); and the id of another organisation's webhook."""
    org = f"fuzz-{uuid.uuid4().hex[:12]}"
    admin = strict_server.key(org, "admin")
    credential = strict_server.gql(
        admin,
        'mutation { createCredential(input: {name: "fuzz", kind: BEARER, token: "fuzz-token-1234"}) { id } }',
    ).ok()["createCredential"]["id"]
    webhooks = [
        strict_server.gql(
            admin,
            CREATE_WEBHOOK,
            {
                "input": webhook_input(
                    f"https://hooks.invalid/fuzz/{i}",
                    eventTypes=["fuzz.seeded", "alert.activated"],
                    credentialId=credential if i == 0 else None,
                    payloadTemplate='{"id": "{{event_id}}", "name": "{{alert_name}}"}' if i == 1 else None,
                )
            },
        ).ok()["createWebhook"]["id"]
        for i in range(2)
    ]
    event = strict_server.gql(
        admin, PUBLISH, {"input": {"type": "fuzz.seeded", "payload": {"alert_name": "seeded"}}}
    ).ok()["publishEvent"]["eventId"]
    deliveries_of_event = "query($e: ID) { deliveries(eventId: $e) { edges { node { id } } } }"
    deliveries = wait_until(
        lambda: strict_server.gql(admin, deliveries_of_event, {"e": event}).ok()["deliveries"]["edges"]
    )
    other_admin = strict_server.key(f"fuzz-other-{uuid.uuid4().hex[:12]}", "admin")
    other = strict_server.gql(
        other_admin,
        CREATE_WEBHOOK,
        {"input": webhook_input("https://hooks.invalid/other", name=OTHER_ORG_MARKER)},
    ).ok()["createWebhook"]["id"]
    ids = [*webhooks, credential, event, *(d["node"]["id"] for d in deliveries), other]
    return Fuzzed(server=strict_server, admin=admin, ids=ids)


# -- operations generated from the schema (hypothesis-graphql) ---------------------------------------


def json_nodes() -> st.SearchStrategy[graphql.ValueNode]:
    leaves: st.SearchStrategy[graphql.ValueNode] = st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(gql_nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(gql_nodes.Float),
        texts(surrogates=False).map(gql_nodes.String),
        st.booleans().map(gql_nodes.Boolean),
        st.just(gql_nodes.Null),
    )

    def containers(
        children: st.SearchStrategy[graphql.ValueNode],
    ) -> st.SearchStrategy[graphql.ValueNode]:
        objects = st.dictionaries(graphql_names(), children, max_size=5).map(
            lambda d: gql_nodes.Object(
                [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in d.items()]
            )
        )
        return st.one_of(st.lists(children, max_size=5).map(gql_nodes.List), objects)

    return st.recursive(leaves, containers, max_leaves=25)


def scalar_nodes(ids: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    datetimes = st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat())
    return {
        "JSON": json_nodes(),
        "DateTime": st.one_of(datetimes, texts(surrogates=False)).map(gql_nodes.String),
        "ID": st.one_of(st.sampled_from(ids), st.uuids().map(str), texts(surrogates=False)).map(
            gql_nodes.String
        ),
        "String": texts(surrogates=False).map(gql_nodes.String),
    }


@pytest.fixture(scope="module")
def generated(fuzzed: Fuzzed) -> dict[str, st.SearchStrategy[str]]:
    scalars = scalar_nodes(fuzzed.ids)
    return {
        "queries": queries(SCHEMA, custom_scalars=scalars),
        "mutations": mutations(SCHEMA, custom_scalars=scalars),
        # Each with one violation of the schema (a wrong type, a missing argument, an unknown field).
        "invalid operations": from_schema(SCHEMA, custom_scalars=scalars, mode=Mode.NEGATIVE),
    }


@pytest.mark.parametrize("kind", ["queries", "mutations", "invalid operations"])
def test_generated_operations_get_graphql_answers_with_known_codes(
    fuzzed: Fuzzed, generated: dict[str, st.SearchStrategy[str]], kind: str
) -> None:
    before = fuzzed.sent

    @FUZZ
    @given(document=generated[kind])
    def run(document: str) -> None:
        fuzzed.send(document)

    run()
    assert fuzzed.sent - before >= min(EXAMPLES, 10)


# -- hostile values in variables (where JSON carries what a GraphQL literal cannot) -------------------


def json_values(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        strings,
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=5), st.dictionaries(strings, children, max_size=5)
        ),
        max_leaves=25,
    )


def variable_operations(ids: list[str]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    strings = texts(surrogates=True)
    some_id = st.one_of(st.sampled_from(ids), st.uuids().map(str), strings)
    ints = st.one_of(
        st.integers(min_value=-(2**31), max_value=2**31 - 1), st.sampled_from([0, -1, 2**31, 2**63])
    )
    datetimes = st.one_of(
        st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat()), strings
    )
    json_any = json_values(strings)
    json_object = st.dictionaries(strings, json_any, max_size=6)
    maybe = st.none

    def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional=fields)

    headers = st.lists(st.fixed_dictionaries({"name": strings, "value": strings}), max_size=3)
    conditions = st.lists(
        st.fixed_dictionaries(
            {
                "field": strings,
                "operator": st.sampled_from(
                    ["EQ", "NEQ", "IN", "NOT_IN", "CONTAINS", "EXISTS", "GT", "GTE", "LT", "LTE", "MATCHES"]
                ),
            },
            optional={"values": st.lists(json_any, max_size=3) | maybe()},
        ),
        max_size=3,
    )
    filters = st.lists(st.fixed_dictionaries({"conditions": conditions}), max_size=2)
    webhook_fields = {
        "description": strings | maybe(),
        "method": st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
        "headers": headers,
        "credentialId": some_id | maybe(),
        "payloadTemplate": strings | json_object.map(json.dumps) | maybe(),
        "filters": filters,
        "rateLimitPerSecond": ints | maybe(),
        "ordered": st.booleans(),
    }
    target = st.one_of(strings, strings.map(lambda s: "https://hooks.invalid/" + s))
    create = st.fixed_dictionaries(
        {"name": strings, "eventTypes": st.lists(strings, max_size=3), "targetUrl": target},
        optional={**webhook_fields, "active": st.booleans(), "allowDuplicate": st.booleans()},
    )
    update = optional(
        name=strings, eventTypes=st.lists(strings, max_size=3), targetUrl=target, **webhook_fields
    )
    event = st.fixed_dictionaries(
        {"type": strings, "payload": st.one_of(json_object, json_any)},
        optional={"idempotencyKey": strings | maybe(), "occurredAt": datetimes | maybe()},
    )
    credential = st.fixed_dictionaries(
        {"name": strings, "kind": st.sampled_from(["BASIC", "BEARER", "HEADER"])},
        optional={p: strings for p in ("username", "password", "token", "headerName", "headerValue")},
    )
    event_type = st.fixed_dictionaries(
        {"name": strings, "samplePayload": st.one_of(json_object, json_any)},
        optional={"description": strings | maybe()},
    )
    operations: list[tuple[str, st.SearchStrategy[dict[str, Any]]]] = [
        (
            "mutation($input: CreateWebhookInput!) "
            "{ createWebhook(input: $input) { id name headers { name } } }",
            st.fixed_dictionaries({"input": create}),
        ),
        (
            "mutation($id: ID!, $input: UpdateWebhookInput!, $v: Int) "
            "{ updateWebhook(id: $id, input: $input, expectedVersion: $v) { id version } }",
            st.fixed_dictionaries({"id": some_id, "input": update}, optional={"v": ints}),
        ),
        (
            "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }",
            st.fixed_dictionaries({"input": event}),
        ),
        (
            "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId } }",
            st.fixed_dictionaries({"input": st.lists(event, max_size=3)}),
        ),
        (
            "mutation($input: CreateCredentialInput!) "
            "{ createCredential(input: $input) { id maskedSecret } }",
            st.fixed_dictionaries({"input": credential}),
        ),
        (
            "mutation($input: DefineEventTypeInput!) { defineEventType(input: $input) { name variables } }",
            st.fixed_dictionaries({"input": event_type}),
        ),
        (
            "mutation($id: ID!, $s: Boolean) "
            "{ sendTest(webhookId: $id, useSampleData: $s) { success errors } }",
            st.fixed_dictionaries({"id": some_id}, optional={"s": st.booleans()}),
        ),
        (
            "mutation($id: ID!, $since: DateTime!) { recoverDeliveries(webhookId: $id, since: $since) }",
            st.fixed_dictionaries({"id": some_id, "since": datetimes}),
        ),
        (
            "mutation($id: ID!, $from: DateTime!, $to: DateTime) "
            "{ replayEvents(webhookId: $id, from: $from, to: $to) }",
            st.fixed_dictionaries({"id": some_id, "from": datetimes}, optional={"to": datetimes}),
        ),
        (
            "mutation($id: ID!) { redeliver(deliveryId: $id) { id status } }",
            st.fixed_dictionaries({"id": some_id}),
        ),
        (
            "query($first: Int, $after: String, $active: Boolean, $t: String) "
            "{ webhooks(first: $first, after: $after, active: $active, eventType: $t) { totalCount } }",
            optional(first=ints, after=strings, active=st.booleans(), t=strings),
        ),
        (
            "query($w: ID, $e: ID, $first: Int, $after: String) "
            "{ deliveries(webhookId: $w, eventId: $e, first: $first, after: $after) { totalCount } }",
            optional(w=some_id, e=some_id, first=ints, after=strings),
        ),
        (
            "query($a: ID, $first: Int, $after: String) "
            "{ auditLog(aggregateId: $a, first: $first, after: $after) { totalCount } }",
            optional(a=some_id, first=ints, after=strings),
        ),
        (
            "query($id: ID!, $v: Int, $at: DateTime) { webhookAsOf(id: $id, version: $v, at: $at) { id } }",
            st.fixed_dictionaries({"id": some_id}, optional={"v": ints, "at": datetimes}),
        ),
        (
            "query($id: ID!) { webhook(id: $id) { id } delivery(id: $id) { id } }",
            st.fixed_dictionaries({"id": some_id}),
        ),
    ]
    return st.one_of(*(st.tuples(st.just(document), variables) for document, variables in operations))


def test_hostile_variable_values_get_graphql_answers_with_known_codes(fuzzed: Fuzzed) -> None:
    before = fuzzed.sent

    @FUZZ
    @given(operation=variable_operations(fuzzed.ids))
    def run(operation: tuple[str, dict[str, Any]]) -> None:
        document, variables = operation
        fuzzed.send(document, variables)

    run()
    assert fuzzed.sent - before >= min(EXAMPLES, 10)


# -- one dimension at a time: every DateTime argument, every string argument ---------------------------

TARGETED = settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))
ZONES = [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]


@pytest.fixture(scope="module")
def target(fuzzed: Fuzzed) -> dict[str, str]:
    """An active webhook with a delivered event of its own (the broad fuzzing may have deleted or
    switched off the seeded ones)."""
    spec = webhook_input("https://hooks.invalid/targeted", eventTypes=["fuzz.targeted"], allowDuplicate=True)
    webhook = fuzzed.server.gql(fuzzed.admin, CREATE_WEBHOOK, {"input": spec}).ok()["createWebhook"]["id"]
    fuzzed.server.gql(fuzzed.admin, PUBLISH, {"input": {"type": "fuzz.targeted", "payload": {}}}).ok()
    return {"webhook": webhook}


DATETIME_OPERATIONS = [
    "query($id: ID!, $a: DateTime) { webhookAsOf(id: $id, at: $a) { id version } }",
    "mutation($id: ID!, $a: DateTime!) { recoverDeliveries(webhookId: $id, since: $a) }",
    "mutation($id: ID!, $a: DateTime!, $b: DateTime) { replayEvents(webhookId: $id, from: $a, to: $b) }",
    'mutation($a: DateTime) { publishEvent(input: {type: "fuzz.when", payload: {}, occurredAt: $a}) '
    "{ eventId } }",
]


def test_every_datetime_argument_takes_any_iso_datetime_with_or_without_an_offset(
    fuzzed: Fuzzed, target: dict[str, str]
) -> None:
    when = st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.sampled_from(ZONES)
    ).map(lambda d: d.isoformat())

    @TARGETED
    @given(document=st.sampled_from(DATETIME_OPERATIONS), a=when, b=when)
    def run(document: str, a: str, b: str) -> None:
        variables = {"id": target["webhook"], "a": a, "b": b}
        used = {name: v for name, v in variables.items() if f"${name}" in document}
        fuzzed.send(document, used)

    run()


STRING_OPERATIONS = [
    "mutation($s: String!) { createWebhook(input: {name: $s, description: $s, eventTypes: [$s], "
    'targetUrl: "https://hooks.invalid/strings", allowDuplicate: true}) { id } }',
    'mutation($s: String!) { createWebhook(input: {name: $s, eventTypes: ["fuzz.strings"], '
    'targetUrl: "https://hooks.invalid/strings", allowDuplicate: true, '
    'headers: [{name: "X-Fuzz", value: $s}], payloadTemplate: $s}) { id } }',
    "mutation($s: String!, $p: JSON!) { publishEvent(input: {type: $s, payload: $p, idempotencyKey: $s}) "
    "{ eventId } }",
    "mutation($s: String!) { createCredential(input: {name: $s, kind: BEARER, token: $s}) { id } }",
    'mutation($s: String!) { createCredential(input: {name: $s, kind: HEADER, headerName: "X-Key", '
    "headerValue: $s}) { id } }",
    "mutation($s: String!, $p: JSON!) "
    "{ defineEventType(input: {name: $s, description: $s, samplePayload: $p}) { name } }",
    "mutation($s: String!) { setRetentionPolicy(input: {payloads: $s, deliveries: $s}) { payloads } }",
    "query($s: String!) { webhooks(eventType: $s, after: $s) { totalCount } }",
    "query($s: String!) { deliveries(after: $s) { totalCount } auditLog(after: $s) { totalCount } }",
    "query($s: ID!) { webhook(id: $s) { id } delivery(id: $s) { id } "
    "webhookAsOf(id: $s, version: 1) { id } }",
]


def test_every_string_argument_takes_any_text_json_can_carry(fuzzed: Fuzzed) -> None:
    """Including lone surrogates, which JSON escapes carry (`"\\ud800"`) but UTF-8 cannot encode."""
    anything = st.characters(codec=None, exclude_categories=())
    surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
    text = st.one_of(
        st.text(anything, min_size=1, max_size=30),
        st.tuples(st.text(max_size=10), surrogate, st.text(max_size=10)).map("".join),
    )

    @TARGETED
    @given(document=st.sampled_from(STRING_OPERATIONS), s=text)
    def run(document: str, s: str) -> None:
        variables: dict[str, Any] = {"s": s}
        if "$p" in document:
            variables["p"] = {s: s, "nested": {"list": [s]}}
        fuzzed.send(document, variables)
        if document.startswith("query"):
            fuzzed.send(document, variables, get=True)  # variables in the URL, parsed by another path

    run()


def test_verify_audit_log_stays_valid_while_the_organisation_is_being_written_to(fuzzed: Fuzzed) -> None:
    """Traffic is not tampering: events recorded while the chain is being checked must not make it
    "invalid" (a false alarm an auditor cannot tell from a real one)."""
    server = fuzzed.server
    org = f"fuzz-busy-{uuid.uuid4().hex[:10]}"
    publisher, auditor = server.key(org, "publisher"), server.key(org, "auditor")
    stop = threading.Event()

    def publish() -> None:
        n = 0
        while not stop.is_set() and n < 1000:
            server.gql(publisher, PUBLISH, {"input": {"type": "fuzz.busy", "payload": {"n": n}}}).ok()
            n += 1

    busy = threading.Thread(target=publish, daemon=True)
    busy.start()
    verdicts = []
    try:
        for _ in range(30):
            verdicts.append(server.gql(auditor, VERIFY).ok()["verifyAuditLog"])
            time.sleep(0.05)
    finally:
        stop.set()
        busy.join(30)

    invalid = [v for v in verdicts if not v["valid"]]
    assert invalid == [], (
        f"{len(invalid)} of {len(verdicts)} checks under load said invalid, e.g. {invalid[:2]}"
    )
    time.sleep(1)
    assert server.gql(auditor, VERIFY).ok()["verifyAuditLog"]["valid"] is True


VERIFY = "{ verifyAuditLog { valid checked firstInvalidPosition } }"


def test_the_fuzzed_organisation_can_still_be_read(fuzzed: Fuzzed) -> None:
    """After all that, the gateway still answers normally for the same organisation."""
    answer = fuzzed.send("{ webhooks(first: 500) { totalCount } verifyAuditLog { valid } }")
    assert answer["data"]["verifyAuditLog"]["valid"] is True
    print(f"fuzzing sent {fuzzed.sent} operations; error codes seen: {dict(sorted(fuzzed.codes.items()))}")
