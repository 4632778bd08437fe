"""The walking skeleton, as a new user would run it: real serve, real CLI, real receiver."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks import Webhook as StandardWebhook

from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, webhook_input
from tests.support import Receiver, Server, wait_until


def test_a_published_event_arrives_signed_and_its_attempt_is_recorded(
    fresh_server: Server, receiver: Receiver
) -> None:
    admin = fresh_server.key("acme", "admin")
    publisher = fresh_server.key("acme", "publisher")
    created = fresh_server.gql(
        admin,
        CREATE_WEBHOOK,
        {
            "input": webhook_input(
                receiver.url + "/hooks/incidents", headers=[{"name": "X-Team", "value": "ops"}]
            )
        },
    ).ok()["createWebhook"]
    assert created["signingSecret"].startswith("whsec_")

    payload = {"alert_name": "Disk full", "workspace_name": 'Paris "HQ"', "severity": 3}
    published = fresh_server.gql(
        publisher,
        PUBLISH,
        {"input": {"type": "alert.activated", "payload": payload, "idempotencyKey": "alert-1"}},
    ).ok()["publishEvent"]
    assert published["duplicate"] is False

    (request,) = receiver.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/hooks/incidents"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("Hookline/")
    assert request.headers["X-Team"] == "ops"
    verified = StandardWebhook(created["signingSecret"]).verify(request.body, request.headers)
    assert verified == {
        "id": published["eventId"],
        "type": "alert.activated",
        "occurredAt": json.loads(request.body)["occurredAt"],
        "organizationId": json.loads(request.body)["organizationId"],
        "data": payload,
    }

    def succeeded() -> dict[str, Any] | None:
        edges = fresh_server.gql(admin, DELIVERIES, {"webhookId": created["id"]}).ok()["deliveries"]["edges"]
        return edges[0]["node"] if edges and edges[0]["node"]["status"] == "SUCCEEDED" else None

    delivery = wait_until(succeeded)
    assert delivery["id"] == request.headers["webhook-id"]
    assert delivery["eventId"] == published["eventId"]
    assert [(a["number"], a["statusCode"]) for a in delivery["attempts"]] == [(1, 200)]
    assert delivery["attempts"][0]["responseBody"] == "ok"

    again = fresh_server.gql(
        publisher,
        PUBLISH,
        {"input": {"type": "alert.activated", "payload": payload, "idempotencyKey": "alert-1"}},
    ).ok()["publishEvent"]
    assert again == {"eventId": published["eventId"], "duplicate": True}
    time.sleep(1.0)  # give a wrongly created second delivery the time to arrive
    assert len(receiver.requests) == 1
    assert fresh_server.gql(admin, DELIVERIES, {}).ok()["deliveries"]["totalCount"] == 1


def test_a_failing_target_leaves_a_retrying_delivery_with_the_answer(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    receiver.respond = lambda _: (500, {}, "database is down")
    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    open_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url)}).ok()
    open_server.gql(publisher, PUBLISH, {"input": {"type": "alert.activated", "payload": {"n": 1}}}).ok()

    def retrying() -> dict[str, Any] | None:
        edges = open_server.gql(admin, DELIVERIES, {"status": "RETRYING"}).ok()["deliveries"]["edges"]
        return edges[0]["node"] if edges else None

    delivery = wait_until(retrying)
    (attempt,) = delivery["attempts"]
    assert attempt["statusCode"] == 500
    assert attempt["responseBody"] == "database is down"
    assert attempt["error"] == "HTTP 500"
    next_attempt = datetime.fromisoformat(delivery["nextAttemptAt"])
    started = datetime.fromisoformat(attempt["startedAt"])
    assert timedelta(seconds=3) < next_attempt - started <= timedelta(seconds=6)  # first retry within 5 s


def test_events_of_other_types_and_inactive_webhooks_get_no_delivery(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    open_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url + "/a")}).ok()
    open_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url + "/b", active=False)}).ok()
    for event_type in ("ticket.created", "alert.activated"):
        open_server.gql(publisher, PUBLISH, {"input": {"type": event_type, "payload": {}}}).ok()
    receiver.wait_for(1)
    time.sleep(0.5)
    assert [r.path for r in receiver.requests] == ["/a"]


def test_concurrent_single_publishes_are_each_answered_on_their_own(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    """publishEvent requests in flight together may share a store transaction: a forbidden or invalid
    one among them fails alone, a repeated idempotency key is new exactly once, and every event that
    was answered new is delivered once."""
    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    viewer = open_server.key(org, "viewer")
    open_server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url)}).ok()

    def event(n: int, **more: Any) -> dict[str, Any]:
        return {"type": "alert.activated", "payload": {"n": n}, **more}

    requests: list[tuple[str, str, dict[str, Any]]] = [
        *(("new", publisher, event(n)) for n in range(20)),
        *(("keyed", publisher, event(100, idempotencyKey="same-key")) for _ in range(10)),
        *(("forbidden", viewer, event(200)) for _ in range(5)),
        *(("invalid", publisher, event(300, type=" ")) for _ in range(5)),
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(
            pool.map(lambda r: (r[0], open_server.gql(r[1], PUBLISH, {"input": r[2]})), requests[::-1])
        )

    keyed_ids = set()
    keyed_new = 0
    for kind, result in results:
        if kind == "forbidden":
            assert result.codes == ["FORBIDDEN"], result.errors
        elif kind == "invalid":
            assert result.codes == ["BAD_USER_INPUT"], result.errors
            assert result.fields == ["type"], result.errors
        else:
            published = result.ok()["publishEvent"]
            if kind == "new":
                assert published["duplicate"] is False
            else:
                keyed_ids.add(published["eventId"])
                keyed_new += not published["duplicate"]
    assert len(keyed_ids) == 1
    assert keyed_new == 1

    receiver.wait_for(21)
    time.sleep(1.0)  # a wrongly made delivery would have the time to arrive
    arrived = sorted(json.loads(r.body)["data"]["n"] for r in receiver.requests)
    assert arrived == [*range(20), 100]
