"""The data plane end to end: filters, templates, retries, credentials, rate limits, tests, redelivery,
restarts and the event-type catalogue, each through a real `hookline serve` and a real receiver."""

from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as StandardWebhook

from tests.queries import CREATE_WEBHOOK, DELIVERIES, DELIVERY, PUBLISH, WEBHOOK, webhook_input
from tests.support import GraphQLResult, Received, Receiver, Server, server_env, wait_until

# -- documents of the surface this file covers ------------------------------------------------------

CREATE_CREDENTIAL = """
mutation($input: CreateCredentialInput!) { createCredential(input: $input) { id name kind maskedSecret } }
"""
CREDENTIALS = "query { credentials { id name kind maskedSecret } }"
EVENT_TYPES = "query { eventTypes { name description variables samplePayload builtIn } }"
DEFINE_EVENT_TYPE = """
mutation($input: DefineEventTypeInput!) {
  defineEventType(input: $input) { name description variables samplePayload builtIn }
}
"""
SEND_TEST = """
mutation($webhookId: ID!, $useSampleData: Boolean) {
  sendTest(webhookId: $webhookId, useSampleData: $useSampleData) {
    success statusCode durationMs responseBody errors requestBody
  }
}
"""
REDELIVER = """
mutation($deliveryId: ID!) {
  redeliver(deliveryId: $deliveryId) {
    id webhookId eventId status nextAttemptAt attempts { number statusCode }
  }
}
"""

ENVELOPE = {"event_id", "event_type", "organization_id", "organization_name", "timestamp"}
UNDEFINED_TYPE = "monitor.custom"  # nobody defines it: any variable goes
BUILT_IN_TYPES = (
    "alert.activated",
    "microservice.executed",
    "object.created",
    "object.modified",
    "object.deleted",
    "operation.executed",
    "operation.executed_in_workspace",
    "ticket.created",
    "ticket.updated",
    "ticket.deleted",
    "rule.violation",
    "reserved_instance.surplus",
    "reserved_instance.deficit",
    "alert.sent",
    "hookline.webhook.failing",  # operator events (the contract's "Operations")
    "hookline.webhook.disabled",
    "hookline.delivery.failed",
)


# -- helpers -----------------------------------------------------------------------------------------


def keys(server: Server, *wanted: tuple[str, str]) -> list[str]:
    """A key for each (organisation, role), made by the real CLI, in parallel (a run takes about 1 s).

    The first key of an organisation creates it, and two runs that both create the organisation lose
    one of their keys (printed, never stored: `Hookline.issue_key` retries a save whose events were
    already collected), so an organisation's first key is made before the others.
    """
    firsts = {org: i for i, (org, _) in reversed(list(enumerate(wanted)))}.values()
    batches = [
        [i for i in range(len(wanted)) if i in firsts],
        [i for i in range(len(wanted)) if i not in firsts],
    ]
    made: dict[int, str] = {}
    with ThreadPoolExecutor(max_workers=3) as pool:
        for batch in batches:
            made.update(zip(batch, pool.map(lambda i: server.key(*wanted[i]), batch), strict=True))
    return [made[i] for i in range(len(wanted))]


def create_webhook(server: Server, key: str, target: str, **overrides: object) -> dict[str, Any]:
    webhook = server.gql(key, CREATE_WEBHOOK, {"input": webhook_input(target, **overrides)}).ok()[
        "createWebhook"
    ]
    assert isinstance(webhook, dict)
    return webhook


def publish(server: Server, key: str, event_type: str, payload: dict[str, Any]) -> str:
    published = server.gql(key, PUBLISH, {"input": {"type": event_type, "payload": payload}}).ok()
    return str(published["publishEvent"]["eventId"])


def deliveries(server: Server, key: str, **where: str) -> list[dict[str, Any]]:
    page = server.gql(key, DELIVERIES, {"first": 100, **where}).ok()["deliveries"]
    return [edge["node"] for edge in page["edges"]]


def deliveries_once(server: Server, key: str, count: int, **where: str) -> list[dict[str, Any]]:
    """The deliveries matching `where` once the read model shows at least `count`: it follows the log,
    and a delivery may reach its target before the read model has it (it is queued by the process
    that created it, see workers.dispatch)."""
    found: list[dict[str, Any]] = wait_until(
        lambda: page if len(page := deliveries(server, key, **where)) >= count else None
    )
    return found


def wait_for_delivery(
    server: Server,
    key: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 10.0,
    **where: str,
) -> dict[str, Any]:
    """The one delivery matching `where` once `predicate` holds for it."""

    def ready() -> dict[str, Any] | None:
        found = deliveries(server, key, **where)
        assert len(found) <= 1, found
        return found[0] if found and predicate(found[0]) else None

    delivery: dict[str, Any] = wait_until(ready, timeout)
    return delivery


def status_is(*statuses: str) -> Callable[[dict[str, Any]], bool]:
    return lambda delivery: delivery["status"] in statuses


def header(request: Received, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def data_ids(requests: list[Received]) -> list[str]:
    return sorted(json.loads(r.body)["data"]["id"] for r in requests)


def at_path(receiver: Receiver, path: str) -> list[Received]:
    return [r for r in receiver.requests if r.path == path]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def problems(result: GraphQLResult) -> list[tuple[str, str]]:
    return [
        (f["field"], f["message"]) for e in result.errors for f in e.get("extensions", {}).get("fields", [])
    ]


def statuses(delivery: dict[str, Any]) -> list[int | None]:
    return [a["statusCode"] for a in delivery["attempts"]]


@pytest.fixture
def fast_retry_server(tmp_path: Path) -> Iterator[Server]:
    """Three attempts in all, 0.3 s apart (less up to a fifth of jitter)."""
    server = Server(
        directory=tmp_path,
        env=server_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true", HOOKLINE_RETRY_SCHEDULE="0.3,0.3"),
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test alone, with the default retry schedule, that the test may restart."""
    server = Server(directory=tmp_path, env=server_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true"))
    try:
        yield server.start()
    finally:
        server.stop()


# -- 1. conditions -------------------------------------------------------------------------------------


def test_filter_groups_are_ored_and_the_conditions_of_a_group_anded(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    filtered = create_webhook(
        open_server,
        admin,
        receiver.url + "/filtered",
        eventTypes=[UNDEFINED_TYPE],
        filters=[
            {
                "conditions": [
                    {"field": "severity", "operator": "GTE", "values": [3]},
                    {"field": "service", "operator": "EQ", "values": ["db"]},
                ]
            },
            {"conditions": [{"field": "tags", "operator": "CONTAINS", "values": ["page"]}]},
        ],
    )
    # Receives every event, so that once it has the last one, every fan-out is known to be done.
    everything = create_webhook(open_server, admin, receiver.url + "/all", eventTypes=[UNDEFINED_TYPE])
    payloads: list[dict[str, Any]] = [
        {"id": "a", "severity": 3, "service": "db", "tags": ["mail"]},  # group A (GTE at its bound)
        {"id": "b", "severity": 1, "service": "web", "tags": ["ops", "page"]},  # group B
        {"id": "half-a", "severity": 5, "service": "web", "tags": ["ops"]},  # one condition of A only
        {"id": "neither", "severity": 2, "service": "db", "tags": ["pager", "ops"]},
    ]
    event_ids = {p["id"]: publish(open_server, admin, UNDEFINED_TYPE, p) for p in payloads}

    wait_until(lambda: len(at_path(receiver, "/all")) >= len(payloads))
    wait_until(lambda: len(at_path(receiver, "/filtered")) >= 2)

    deliveries_once(open_server, admin, len(payloads), webhookId=everything["id"])  # every fan-out read
    made = deliveries(open_server, admin, webhookId=filtered["id"])
    assert sorted(d["eventId"] for d in made) == sorted([event_ids["a"], event_ids["b"]])
    assert data_ids(at_path(receiver, "/filtered")) == ["a", "b"]


def test_a_nested_dotted_path_and_a_regex_route_events(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    nested = create_webhook(
        open_server,
        admin,
        receiver.url + "/paris",
        eventTypes=[UNDEFINED_TYPE],
        filters=[{"conditions": [{"field": "workspace.name", "operator": "EQ", "values": ["Paris"]}]}],
    )
    regex = create_webhook(
        open_server,
        admin,
        receiver.url + "/db-hosts",
        eventTypes=[UNDEFINED_TYPE],
        filters=[
            {"conditions": [{"field": "host", "operator": "MATCHES", "values": [r"^srv-(db|sql)-\d+$"]}]}
        ],
    )
    everything = create_webhook(open_server, admin, receiver.url + "/all", eventTypes=[UNDEFINED_TYPE])
    payloads: list[dict[str, Any]] = [
        {"id": "paris", "workspace": {"name": "Paris"}, "host": "srv-web-1"},
        {"id": "lyon", "workspace": {"name": "Lyon"}, "host": "srv-web-2"},
        {"id": "flat", "workspace_name": "Paris", "workspace": "Paris", "host": "db"},
        {"id": "db", "workspace": {"name": "Berlin"}, "host": "srv-db-12"},
        {"id": "sql", "host": "srv-sql-3"},
        {"id": "not-anchored", "host": "old-srv-db-12"},
        {"id": "not-a-string", "host": 12},
    ]
    for payload in payloads:
        publish(open_server, admin, UNDEFINED_TYPE, payload)

    wait_until(lambda: len(at_path(receiver, "/all")) >= len(payloads))
    wait_until(lambda: len(at_path(receiver, "/paris")) >= 1 and len(at_path(receiver, "/db-hosts")) >= 2)

    assert data_ids(at_path(receiver, "/paris")) == ["paris"]
    assert data_ids(at_path(receiver, "/db-hosts")) == ["db", "sql"]
    deliveries_once(open_server, admin, len(payloads), webhookId=everything["id"])  # every fan-out read
    assert len(deliveries(open_server, admin, webhookId=nested["id"])) == 1
    assert len(deliveries(open_server, admin, webhookId=regex["id"])) == 2


# -- 2. templates --------------------------------------------------------------------------------------

JSON_TEMPLATE = json.dumps(
    {
        "text": "Alert {{alert_name}} on {{workspace_name}}",
        "count": "{{count}}",
        "raw": "{{details}}",
        "missing": "{{nope}}",
        "channel": "#alerts",
    }
)


def test_a_json_template_keeps_every_value_inside_its_string_and_lone_placeholders_keep_their_type(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    create_webhook(
        open_server,
        admin,
        receiver.url + "/json",
        eventTypes=[UNDEFINED_TYPE],
        payloadTemplate=JSON_TEMPLATE,
    )
    create_webhook(
        open_server,
        admin,
        receiver.url + "/text",
        eventTypes=[UNDEFINED_TYPE],
        headers=[{"name": "Content-Type", "value": "text/plain"}],
        payloadTemplate=(
            "Alert {{alert_name}} on {{workspace_name}}: {{count}} in #alerts"
            " (disk {{details.disk}}, event {{event_id}} of {{organization_name}})"
        ),
    )
    alert_name = 'Disk "C:\\" full\nline two\tcolumn — é ñ 中文 🚀🔥'
    workspace_name = 'Paris \\ "HQ" "}, "injected": true, "x": "{{count}} #alerts'
    details = {"disk": "C:\\", "used": [91.5, 93], "nested": {"ok": False, "none": None}, "emoji": "🔥"}
    event_id = publish(
        open_server,
        admin,
        UNDEFINED_TYPE,
        {"alert_name": alert_name, "workspace_name": workspace_name, "count": 7, "details": details},
    )

    receiver.wait_for(2)

    (as_json,) = at_path(receiver, "/json")
    assert header(as_json, "Content-Type") == "application/json"
    assert json.loads(as_json.body) == {
        "text": f"Alert {alert_name} on {workspace_name}",
        "count": 7,
        "raw": details,
        "missing": None,
        "channel": "#alerts",
    }
    (as_text,) = at_path(receiver, "/text")
    assert (header(as_text, "Content-Type") or "").startswith("text/plain")
    assert as_text.body.decode() == (
        f"Alert {alert_name} on {workspace_name}: 7 in #alerts (disk C:\\, event {event_id} of {org})"
    )


def test_a_template_may_name_only_the_variables_a_defined_type_declares(
    open_server: Server, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    target = "https://example.com/hooks/" + uuid.uuid4().hex
    unknown = json.dumps({"x": "{{not_a_variable}}", "y": "n = {{other_unknown}}"})

    refused = open_server.gql(
        admin,
        CREATE_WEBHOOK,
        {"input": webhook_input(target, eventTypes=["alert.activated"], payloadTemplate=unknown)},
    )
    assert refused.codes == ["BAD_USER_INPUT"]
    assert refused.data is None
    assert set(refused.fields) == {"payloadTemplate"}
    messages = " ".join(message for _, message in problems(refused))
    assert "not_a_variable" in messages
    assert "other_unknown" in messages

    mixed = open_server.gql(
        admin,
        CREATE_WEBHOOK,
        {
            "input": webhook_input(
                target, eventTypes=[UNDEFINED_TYPE, "alert.activated"], payloadTemplate=unknown
            )
        },
    )
    assert mixed.codes == ["BAD_USER_INPUT"]
    assert "payloadTemplate" in mixed.fields

    not_json = open_server.gql(
        admin,
        CREATE_WEBHOOK,
        {"input": webhook_input(target, eventTypes=[UNDEFINED_TYPE], payloadTemplate='{"x": "{{a}}"')},
    )
    assert not_json.codes == ["BAD_USER_INPUT"]
    assert "payloadTemplate" in not_json.fields

    undefined = create_webhook(
        open_server, admin, target, eventTypes=[UNDEFINED_TYPE], payloadTemplate=unknown
    )
    assert undefined["payloadTemplate"] == unknown
    declared = json.dumps({"x": "{{workspace_name}}", "at": "{{timestamp}}"})
    built_in = create_webhook(
        open_server, admin, target, eventTypes=["alert.activated"], payloadTemplate=declared
    )
    assert built_in["payloadTemplate"] == declared


# -- 3. retries ----------------------------------------------------------------------------------------


def test_retry_after_on_503_is_honoured_and_every_attempt_carries_the_same_webhook_id(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    receiver.respond = lambda _: (
        (503, {"Retry-After": "1"}, "busy") if len(receiver.requests) <= 2 else (200, {}, "ok")
    )
    webhook = create_webhook(open_server, admin, receiver.url)
    publish(open_server, admin, "alert.activated", {"n": 1})

    delivery = wait_for_delivery(
        open_server, admin, status_is("SUCCEEDED", "FAILED"), timeout=15, webhookId=webhook["id"]
    )

    assert delivery["status"] == "SUCCEEDED"
    assert statuses(delivery) == [503, 503, 200]
    assert [a["number"] for a in delivery["attempts"]] == [1, 2, 3]
    assert delivery["nextAttemptAt"] is None
    requests = receiver.requests
    assert len(requests) == 3
    assert {header(r, "webhook-id") for r in requests} == {delivery["id"]}
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert all(gap >= 0.9 for gap in gaps), gaps


def test_410_gone_fails_at_once_and_switches_the_webhook_off(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    receiver.respond = lambda _: (410, {}, "gone for good")
    webhook = create_webhook(open_server, admin, receiver.url)
    publish(open_server, admin, "alert.activated", {"n": 1})

    delivery = wait_for_delivery(open_server, admin, status_is("FAILED"), webhookId=webhook["id"])
    switched_off = wait_until(
        lambda: (
            (w := open_server.gql(admin, WEBHOOK, {"id": webhook["id"]}).ok()["webhook"])["active"] is False
            and w
        )
    )

    assert statuses(delivery) == [410]
    assert delivery["nextAttemptAt"] is None
    assert switched_off["disabledReason"] == "gone"
    publish(open_server, admin, "alert.activated", {"n": 2})  # an inactive webhook gets nothing more
    time.sleep(0.7)
    assert len(receiver.requests) == 1


def test_a_target_that_keeps_failing_ends_failed_after_the_last_attempt_of_the_schedule(
    fast_retry_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(fast_retry_server, (org, "admin"))
    receiver.respond = lambda _: (500, {}, "still broken")
    webhook = create_webhook(fast_retry_server, admin, receiver.url)
    publish(fast_retry_server, admin, "alert.activated", {"n": 1})

    delivery = wait_for_delivery(fast_retry_server, admin, status_is("FAILED"), webhookId=webhook["id"])

    assert statuses(delivery) == [500, 500, 500]
    assert delivery["nextAttemptAt"] is None
    assert all(a["responseBody"] == "still broken" for a in delivery["attempts"])
    assert len(receiver.requests) == 3
    assert len({header(r, "webhook-id") for r in receiver.requests}) == 1


# -- 4. credentials ------------------------------------------------------------------------------------


class Recorded:
    """Sends GraphQL through a server and keeps every answer as text, to search them for secrets."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.answers: list[str] = []

    def gql(self, key: str, query: str, variables: dict[str, Any] | None = None) -> GraphQLResult:
        result = self.server.gql(key, query, variables)
        self.answers.append(json.dumps(result))
        self.answers.append(json.dumps(result, ensure_ascii=False))
        return result


def test_credentials_are_sent_with_each_delivery_and_never_shown(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    admin, auditor = keys(open_server, (org, "admin"), (org, "auditor"))
    recorder = Recorded(open_server)
    gql = recorder.gql
    username, password = f"svc-{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    token, api_key = f"tok-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}"
    basic_value = base64.b64encode(f"{username}:{password}".encode()).decode()
    inputs = {
        "BASIC": {"name": "Basic auth", "kind": "BASIC", "username": username, "password": password},
        "BEARER": {"name": "Bearer token", "kind": "BEARER", "token": token},
        "HEADER": {"name": "API key", "kind": "HEADER", "headerName": "X-Api-Key", "headerValue": api_key},
    }
    main_secret = {"BASIC": password, "BEARER": token, "HEADER": api_key}

    created = {
        kind: gql(admin, CREATE_CREDENTIAL, {"input": value}).ok()["createCredential"]
        for kind, value in inputs.items()
    }
    listed = {c["id"]: c for c in gql(admin, CREDENTIALS).ok()["credentials"]}
    listed_by_auditor = {c["id"]: c for c in gql(auditor, CREDENTIALS).ok()["credentials"]}

    assert set(listed) == {c["id"] for c in created.values()}
    for kind, credential in created.items():
        assert credential["kind"] == kind
        assert credential["name"] == inputs[kind]["name"]
        assert listed[credential["id"]] == credential
        assert listed_by_auditor[credential["id"]] == credential
        masked, secret = credential["maskedSecret"], main_secret[kind]
        assert masked, kind
        shown = [secret[i : i + 3] for i in range(len(secret) - 2) if secret[i : i + 3] in masked]
        assert not shown, f"{kind}: {masked!r} shows more than the last 2 characters of the secret"

    webhooks = {
        kind: gql(
            admin,
            CREATE_WEBHOOK,
            {"input": webhook_input(f"{receiver.url}/{kind}", credentialId=credential["id"])},
        ).ok()["createWebhook"]
        for kind, credential in created.items()
    }
    assert {k: w["credentialId"] for k, w in webhooks.items()} == {k: c["id"] for k, c in created.items()}
    published = gql(admin, PUBLISH, {"input": {"type": "alert.activated", "payload": {"n": 1}}}).ok()
    receiver.wait_for(3)

    by_path = {r.path: r for r in receiver.requests}
    assert header(by_path["/BASIC"], "Authorization") == f"Basic {basic_value}"
    assert header(by_path["/BEARER"], "Authorization") == f"Bearer {token}"
    assert header(by_path["/HEADER"], "X-Api-Key") == api_key
    assert header(by_path["/HEADER"], "Authorization") is None
    for kind, webhook in webhooks.items():
        request = by_path[f"/{kind}"]
        StandardWebhook(webhook["signingSecret"]).verify(request.body, request.headers)

    def all_succeeded() -> bool:
        page = gql(admin, DELIVERIES, {"eventId": published["publishEvent"]["eventId"]}).ok()
        nodes = [edge["node"] for edge in page["deliveries"]["edges"]]
        return len(nodes) == 3 and all(node["status"] == "SUCCEEDED" for node in nodes)

    wait_until(all_succeeded)
    for webhook in webhooks.values():
        gql(admin, WEBHOOK, {"id": webhook["id"]}).ok()
        gql(auditor, WEBHOOK, {"id": webhook["id"]}).ok()
    gql(admin, CREATE_CREDENTIAL, {"input": {**inputs["BASIC"], "password": None}})  # an error answer too

    leaked = [s for s in (password, token, api_key, basic_value) if any(s in a for a in recorder.answers)]
    assert not leaked


def test_credential_input_is_checked_and_only_an_admin_may_create_one(open_server: Server, org: str) -> None:
    other = f"{org}-other"
    admin, publisher, viewer, other_admin = keys(
        open_server, (org, "admin"), (org, "publisher"), (org, "viewer"), (other, "admin")
    )
    theirs = open_server.gql(
        other_admin, CREATE_CREDENTIAL, {"input": {"name": "Theirs", "kind": "BEARER", "token": "t" * 20}}
    ).ok()["createCredential"]

    cross = open_server.gql(
        admin,
        CREATE_WEBHOOK,
        {"input": webhook_input("https://example.com/hooks", credentialId=theirs["id"])},
    )
    assert cross.codes == ["BAD_USER_INPUT"]
    assert cross.fields == ["credentialId"]

    missing = {
        "password": {"name": "No password", "kind": "BASIC", "username": "svc"},
        "token": {"name": "No token", "kind": "BEARER"},
        "headerValue": {"name": "No value", "kind": "HEADER", "headerName": "X-Api-Key"},
    }
    for field, value in missing.items():
        refused = open_server.gql(admin, CREATE_CREDENTIAL, {"input": value})
        assert refused.codes == ["BAD_USER_INPUT"], field
        assert refused.data is None
        assert field in refused.fields, (field, refused.fields)
    both = open_server.gql(admin, CREATE_CREDENTIAL, {"input": {"name": "Nothing", "kind": "HEADER"}})
    assert both.codes == ["BAD_USER_INPUT"]
    assert {"headerName", "headerValue"} <= set(both.fields)

    for key in (publisher, viewer):
        forbidden = open_server.gql(
            key, CREATE_CREDENTIAL, {"input": {"name": "Sneaky", "kind": "BEARER", "token": "x" * 20}}
        )
        assert forbidden.codes == ["FORBIDDEN"]
        assert forbidden.data is None
    assert open_server.gql(admin, CREDENTIALS).ok()["credentials"] == []


# -- 5. rate limit -------------------------------------------------------------------------------------


def test_a_rate_limited_webhook_gets_every_event_but_never_more_than_its_limit_per_second(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    create_webhook(open_server, admin, receiver.url, rateLimitPerSecond=5)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: publish(open_server, admin, "alert.activated", {"n": n}), range(20)))
    receiver.wait_for(20, timeout=20)
    time.sleep(0.3)  # a 21st request would be a duplicate

    requests = receiver.requests
    assert sorted(json.loads(r.body)["data"]["n"] for r in requests) == list(range(20))
    arrivals = sorted(r.at for r in requests)
    assert arrivals[-1] - arrivals[0] >= 2.8
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    offsets = ", ".join(f"{t - arrivals[0]:.3f}" for t in arrivals)
    assert busiest <= 6, f"{busiest} requests within one second; arrivals at {offsets} s"


# -- 6. sendTest ---------------------------------------------------------------------------------------

TEST_TEMPLATE = json.dumps(
    {
        "text": "{{alert_name}} on {{workspace_name}}",
        "group": "{{workspace_reporting_group_id}}",
        "type": "{{event_type}}",
        "org": "{{organization_name}}",
        "channel": "#alerts",
    }
)


def send_test(server: Server, key: str, webhook_id: str, use_sample_data: bool) -> dict[str, Any]:
    result = server.gql(key, SEND_TEST, {"webhookId": webhook_id, "useSampleData": use_sample_data}).ok()
    sent: dict[str, Any] = result["sendTest"]
    return sent


def test_send_test_without_sample_data_sends_the_template_unreplaced_and_signed(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    webhook = create_webhook(open_server, admin, receiver.url, payloadTemplate=TEST_TEMPLATE)

    result = send_test(open_server, admin, webhook["id"], use_sample_data=False)

    (request,) = receiver.wait_for(1)
    assert result["success"] is True
    assert result["statusCode"] == 200
    assert result["responseBody"] == "ok"
    assert result["errors"] == []
    assert result["requestBody"] == request.body.decode()
    assert json.loads(request.body) == json.loads(TEST_TEMPLATE)
    assert StandardWebhook(webhook["signingSecret"]).verify(request.body, request.headers) == json.loads(
        TEST_TEMPLATE
    )


def test_send_test_with_sample_data_renders_the_sample_of_a_built_in_type(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    webhook = create_webhook(open_server, admin, receiver.url, payloadTemplate=TEST_TEMPLATE)
    catalogue = open_server.gql(admin, EVENT_TYPES).ok()["eventTypes"]
    sample = next(t for t in catalogue if t["name"] == "alert.activated")["samplePayload"]

    result = send_test(open_server, admin, webhook["id"], use_sample_data=True)

    (request,) = receiver.wait_for(1)
    assert result["success"] is True
    assert result["statusCode"] == 200
    assert result["requestBody"] == request.body.decode()
    assert StandardWebhook(webhook["signingSecret"]).verify(request.body, request.headers) == {
        "text": f"{sample['alert_name']} on {sample['workspace_name']}",
        "group": sample["workspace_reporting_group_id"],
        "type": "alert.activated",
        "org": org,
        "channel": "#alerts",
    }

    # The sample is that of the webhook's first *defined* type.
    ticket_sample = next(t for t in catalogue if t["name"] == "ticket.created")["samplePayload"]
    second = create_webhook(
        open_server,
        admin,
        receiver.url + "/tickets",
        eventTypes=[UNDEFINED_TYPE, "ticket.created", "ticket.updated"],
        payloadTemplate=json.dumps({"type": "{{event_type}}", "title": "{{ticket.title}}"}),
    )
    assert send_test(open_server, admin, second["id"], use_sample_data=True)["success"] is True
    (_, ticket_request) = receiver.wait_for(2)
    assert json.loads(ticket_request.body) == {
        "type": "ticket.created",
        "title": ticket_sample["ticket"]["title"],
    }


def test_send_test_reports_what_a_failing_target_answered(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    receiver.respond = lambda _: (500, {}, "kaput")
    webhook = create_webhook(open_server, admin, receiver.url)

    result = send_test(open_server, admin, webhook["id"], use_sample_data=False)

    (request,) = receiver.wait_for(1)
    assert result["success"] is False
    assert result["statusCode"] == 500
    assert result["responseBody"] == "kaput"
    assert result["requestBody"] == request.body.decode()
    StandardWebhook(webhook["signingSecret"]).verify(request.body, request.headers)


def test_send_test_with_sample_data_needs_a_defined_type_and_sends_nothing_without_one(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    webhook = create_webhook(
        open_server,
        admin,
        receiver.url,
        eventTypes=[UNDEFINED_TYPE],
        payloadTemplate=json.dumps({"x": "{{anything}}"}),
    )

    result = send_test(open_server, admin, webhook["id"], use_sample_data=True)

    assert result["errors"]
    assert result["success"] is False
    assert result["statusCode"] is None
    time.sleep(0.3)
    assert receiver.requests == []


# -- 7. redeliver --------------------------------------------------------------------------------------


def succeeded_delivery(server: Server, key: str, receiver: Receiver) -> dict[str, Any]:
    webhook = create_webhook(server, key, receiver.url)
    publish(server, key, "alert.activated", {"n": 1})
    return wait_for_delivery(server, key, status_is("SUCCEEDED"), webhookId=webhook["id"])


def test_redeliver_sends_the_delivery_again_with_the_same_webhook_id(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(open_server, (org, "admin"))
    delivery = succeeded_delivery(open_server, admin, receiver)

    redelivered = open_server.gql(admin, REDELIVER, {"deliveryId": delivery["id"]}).ok()["redeliver"]
    assert redelivered["id"] == delivery["id"]

    first, second = receiver.wait_for(2)
    assert header(first, "webhook-id") == header(second, "webhook-id") == delivery["id"]
    assert first.body == second.body

    def two_attempts() -> dict[str, Any] | None:
        found = open_server.gql(admin, DELIVERY, {"id": delivery["id"]}).ok()["delivery"]
        return found if found["status"] == "SUCCEEDED" and len(found["attempts"]) == 2 else None

    after = wait_until(two_attempts)
    assert [(a["number"], a["statusCode"]) for a in after["attempts"]] == [(1, 200), (2, 200)]
    time.sleep(0.3)
    assert len(receiver.requests) == 2


def test_redeliver_is_refused_to_a_viewer_and_to_another_organisation(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    admin, viewer, other_admin = keys(open_server, (org, "admin"), (org, "viewer"), (f"{org}-b", "admin"))
    delivery = succeeded_delivery(open_server, admin, receiver)

    forbidden = open_server.gql(viewer, REDELIVER, {"deliveryId": delivery["id"]})
    not_found = open_server.gql(other_admin, REDELIVER, {"deliveryId": delivery["id"]})

    assert forbidden.codes == ["FORBIDDEN"]
    assert not_found.codes == ["NOT_FOUND"]
    assert forbidden.data is None
    assert not_found.data is None
    time.sleep(0.5)
    assert len(receiver.requests) == 1
    after = open_server.gql(admin, DELIVERY, {"id": delivery["id"]}).ok()["delivery"]
    assert after["status"] == "SUCCEEDED"
    assert len(after["attempts"]) == 1


# -- 8. restart ----------------------------------------------------------------------------------------


def test_a_scheduled_retry_survives_a_restart_of_the_server(
    own_server: Server, receiver: Receiver, org: str
) -> None:
    (admin,) = keys(own_server, (org, "admin"))
    receiver.respond = lambda _: (500, {}, "not yet") if len(receiver.requests) == 1 else (200, {}, "ok")
    webhook = create_webhook(own_server, admin, receiver.url)
    publish(own_server, admin, "alert.activated", {"n": 1})

    retrying = wait_for_delivery(own_server, admin, status_is("RETRYING"), webhookId=webhook["id"])
    next_attempt_at = instant(retrying["nextAttemptAt"])
    first_started = instant(retrying["attempts"][0]["startedAt"])
    assert timedelta(seconds=3) < next_attempt_at - first_started <= timedelta(seconds=6)

    own_server.stop()
    assert len(receiver.requests) == 1
    own_server.start()

    delivery = wait_for_delivery(own_server, admin, status_is("SUCCEEDED", "FAILED"), timeout=20)
    assert delivery["id"] == retrying["id"]
    assert delivery["status"] == "SUCCEEDED"
    assert statuses(delivery) == [500, 200]
    assert instant(delivery["attempts"][1]["startedAt"]) >= next_attempt_at - timedelta(milliseconds=100)
    assert [header(r, "webhook-id") for r in receiver.requests] == [delivery["id"]] * 2


# -- 9. event types ------------------------------------------------------------------------------------


def event_types(server: Server, key: str) -> dict[str, dict[str, Any]]:
    listed = server.gql(key, EVENT_TYPES).ok()["eventTypes"]
    names = [t["name"] for t in listed]
    assert len(names) == len(set(names)), names
    return {t["name"]: t for t in listed}


def test_every_built_in_type_is_listed_with_its_variables_and_sample(open_server: Server, org: str) -> None:
    (publisher,) = keys(open_server, (org, "publisher"))

    catalogue = event_types(open_server, publisher)

    assert {name for name, t in catalogue.items() if t["builtIn"]} == set(BUILT_IN_TYPES)
    for name in BUILT_IN_TYPES:
        assert set(catalogue[name]["variables"]) >= ENVELOPE, name
        assert isinstance(catalogue[name]["samplePayload"], dict), name
        assert catalogue[name]["samplePayload"], name
    alert = catalogue["alert.activated"]
    declared = {
        "alert_name",
        "alert_information",
        "alert_start",
        "alert_element",
        "workspace_id",
        "workspace_name",
        "workspace_last_user",
        "workspace_reporting_group_id",
        "workspace_reporting_group_name",
    }
    assert declared <= set(alert["variables"])
    assert declared <= set(alert["samplePayload"])
    assert {"metadata.TenantId", "metadata.attributes.priority", "metadata.tags.facilities"} <= set(
        catalogue["alert.sent"]["variables"]
    )
    assert {"time", "name", "description"} <= set(catalogue["rule.violation"]["variables"])


def test_a_defined_type_declares_its_sample_paths_and_a_second_definition_replaces_it(
    open_server: Server, org: str
) -> None:
    admin, publisher = keys(open_server, (org, "admin"), (org, "publisher"))
    name = "monitor.disk_usage"
    first_sample = {
        "host": "srv-1",
        "workspace": {"name": "Paris", "os": {"version": "11"}},
        "used_pct": 93.5,
    }

    defined = open_server.gql(
        admin,
        DEFINE_EVENT_TYPE,
        {"input": {"name": name, "description": "Disk filling up", "samplePayload": first_sample}},
    ).ok()["defineEventType"]

    paths = {"host", "workspace", "workspace.name", "workspace.os", "workspace.os.version", "used_pct"}
    assert defined["name"] == name
    assert defined["description"] == "Disk filling up"
    assert defined["samplePayload"] == first_sample
    assert defined["builtIn"] is False
    assert set(defined["variables"]) == ENVELOPE | paths
    assert event_types(open_server, publisher)[name] == defined

    # Now a defined type: its variables bind templates.
    target = "https://example.com/hooks/" + uuid.uuid4().hex
    with_path = json.dumps({"where": "{{workspace.name}}"})
    create_webhook(open_server, admin, target, eventTypes=[name], payloadTemplate=with_path)

    second_sample = {"host": "srv-2", "disk": {"mount": "/var"}}
    redefined = open_server.gql(
        admin, DEFINE_EVENT_TYPE, {"input": {"name": name, "samplePayload": second_sample}}
    ).ok()["defineEventType"]

    assert set(redefined["variables"]) == ENVELOPE | {"host", "disk", "disk.mount"}
    assert event_types(open_server, publisher)[name] == redefined
    assert redefined["samplePayload"] == second_sample
    assert redefined["description"] is None
    stale = open_server.gql(
        admin,
        CREATE_WEBHOOK,
        {"input": webhook_input(target + "/2", eventTypes=[name], payloadTemplate=with_path)},
    )
    assert stale.codes == ["BAD_USER_INPUT"]
    assert "payloadTemplate" in stale.fields
    create_webhook(
        open_server,
        admin,
        target + "/3",
        eventTypes=[name],
        payloadTemplate=json.dumps({"mount": "{{disk.mount}}"}),
    )


def test_a_defined_type_is_seen_only_by_its_organisation(open_server: Server, org: str) -> None:
    other = f"{org}-other"
    admin, other_admin = keys(open_server, (org, "admin"), (other, "admin"))
    name = "monitor.private_type"
    ours = open_server.gql(
        admin, DEFINE_EVENT_TYPE, {"input": {"name": name, "samplePayload": {"ours": 1}}}
    ).ok()["defineEventType"]

    assert name not in event_types(open_server, other_admin)
    theirs = open_server.gql(
        other_admin, DEFINE_EVENT_TYPE, {"input": {"name": name, "samplePayload": {"theirs": {"x": 1}}}}
    ).ok()["defineEventType"]

    assert event_types(open_server, admin)[name] == ours
    assert event_types(open_server, other_admin)[name] == theirs
    assert "ours" not in theirs["variables"]


def test_bad_event_type_names_are_refused_and_only_an_admin_may_define(open_server: Server, org: str) -> None:
    admin, publisher, viewer = keys(open_server, (org, "admin"), (org, "publisher"), (org, "viewer"))

    for bad in ("", "Monitor.Alert", "monitor alert", "monitor..alert", ".monitor", "monitor.", "1monitor"):
        refused = open_server.gql(
            admin, DEFINE_EVENT_TYPE, {"input": {"name": bad, "samplePayload": {"a": 1}}}
        )
        assert refused.codes == ["BAD_USER_INPUT"], bad
        assert refused.fields == ["name"], (bad, refused.fields)
    both = open_server.gql(admin, DEFINE_EVENT_TYPE, {"input": {"name": "Bad Name", "samplePayload": [1]}})
    assert both.codes == ["BAD_USER_INPUT"]
    assert set(both.fields) == {"name", "samplePayload"}

    for key in (publisher, viewer):
        forbidden = open_server.gql(
            key, DEFINE_EVENT_TYPE, {"input": {"name": "monitor.sneaky", "samplePayload": {"a": 1}}}
        )
        assert forbidden.codes == ["FORBIDDEN"]
        assert forbidden.data is None
    assert "monitor.sneaky" not in event_types(open_server, admin)
