"""Recovery and ordering end to end: recoverDeliveries, replayEvents, ordered (FIFO) webhooks and the
automatic switch-off of a webhook that keeps failing, through a real `hookline serve` (embedded) and a
real gateway with two `hookline worker`s (distributed), against real receivers."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODES, WORKERS
from tests.queries import DELIVERIES, SET_ACTIVE, WEBHOOK, WEBHOOK_FIELDS, webhook_input
from tests.support import (
    GraphQLResult,
    Received,
    Receiver,
    Server,
    running_server,
    wait_until,
)

# -- documents of the surface this file covers ------------------------------------------------------

CREATE = f"""
mutation($input: CreateWebhookInput!) {{ createWebhook(input: $input) {{ {WEBHOOK_FIELDS} ordered }} }}
"""
PUBLISH_MANY = """
mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId duplicate } }
"""
RECOVER = """
mutation($webhookId: ID!, $since: DateTime!) { recoverDeliveries(webhookId: $webhookId, since: $since) }
"""
REPLAY = """
mutation($webhookId: ID!, $from: DateTime!, $to: DateTime) {
  replayEvents(webhookId: $webhookId, from: $from, to: $to)
}
"""
AUDIT_LOG = """
query($aggregateId: ID) {
  auditLog(aggregateId: $aggregateId, first: 100) {
    edges { node { aggregateId eventType actor data recordedAt version } }
  }
}
"""

FAST_RETRIES = "0.2,0.2"  # three attempts in all, about 0.2 s apart
SETTLE = 1.5  # long enough for a stray job to show up, in either mode (the follower polls every 0.5 s)


# -- servers -----------------------------------------------------------------------------------------


def running(directory: Path, mode: str, **env: str) -> AbstractContextManager[Server]:
    """A server in the given mode with `env` on top of the mode's own."""
    return running_server(directory, mode, workers=WORKERS, **env)


@pytest.fixture(scope="module", params=MODES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Shared by the tests of recovery, replay and ordering (each with organisations of its own):
    retries exhausted in well under a second, loopback receivers allowed."""
    with running(
        tmp_path_factory.mktemp(f"recovery-{request.param}"),
        request.param,
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        HOOKLINE_RETRY_SCHEDULE=FAST_RETRIES,
        # The default: the sweeper re-queues every unfinished delivery, and with 100 of an ordered
        # webhook waiting, sweeping each second floods two workers with jobs that may not go yet.
        HOOKLINE_SWEEP_SECONDS="5",
    ) as started:
        yield started


DISABLE_AFTER_HOURS = 0.0005  # 1.8 s
WINDOW = DISABLE_AFTER_HOURS * 3600


@pytest.fixture(params=MODES)
def disabling_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server that switches a webhook off after 1.8 s of nothing but failures, checking every 0.5 s,
    and keeps retrying a failing delivery for about 3 s."""
    with running(
        tmp_path,
        request.param,
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        HOOKLINE_DISABLE_AFTER_HOURS=str(DISABLE_AFTER_HOURS),
        HOOKLINE_SWEEP_SECONDS="0.5",
        HOOKLINE_RETRY_SCHEDULE="0.5,0.5,0.5,0.5,0.5,0.5",
    ) as started:
        yield started


@pytest.fixture(scope="module")
def accounts(server: Server) -> dict[str, str]:
    """Keys of organisations of their own for each test on the shared server, made once per mode
    (a run of the CLI takes seconds): "recover" and "replay" with a viewer each, "ordered", and a
    "stranger" in another organisation."""
    suffix = uuid.uuid4().hex[:10]
    wanted = {
        "recover": (f"recover-{suffix}", "admin"),
        "replay": (f"replay-{suffix}", "admin"),
        "ordered": (f"ordered-{suffix}", "admin"),
        "stranger": (f"stranger-{suffix}", "admin"),
        "recover-viewer": (f"recover-{suffix}", "viewer"),
        "replay-viewer": (f"replay-{suffix}", "viewer"),
    }
    return dict(zip(wanted, keys(server, *wanted.values()), strict=True))


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


# -- helpers -----------------------------------------------------------------------------------------


def keys(server: Server, *wanted: tuple[str, str]) -> list[str]:
    """A key for each (organisation, role), by the real CLI; each organisation's first key before the
    others (it creates the organisation), the rest in parallel."""
    firsts = {org: i for i, (org, _) in reversed(list(enumerate(wanted)))}
    made: dict[int, str] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for batch in (list(firsts.values()), [i for i in range(len(wanted)) if i not in firsts.values()]):
            made.update(zip(batch, pool.map(lambda i: server.key(*wanted[i]), batch), strict=True))
    return [made[i] for i in range(len(wanted))]


def now() -> datetime:
    return datetime.now(UTC)


def create_webhook(server: Server, key: str, target: str, **overrides: object) -> dict[str, Any]:
    created: dict[str, Any] = server.gql(key, CREATE, {"input": webhook_input(target, **overrides)}).ok()[
        "createWebhook"
    ]
    return created


def publish_many(server: Server, key: str, events: list[dict[str, Any]]) -> list[str]:
    published = server.gql(key, PUBLISH_MANY, {"input": events}).ok()["publishEvents"]
    assert not any(p["duplicate"] for p in published), published
    return [str(p["eventId"]) for p in published]


def webhook(server: Server, key: str, webhook_id: str) -> dict[str, Any]:
    found: dict[str, Any] = server.gql(key, WEBHOOK, {"id": webhook_id}).ok()["webhook"]
    return found


def set_active(server: Server, key: str, webhook_id: str, active: bool) -> dict[str, Any]:
    changed: dict[str, Any] = server.gql(key, SET_ACTIVE, {"id": webhook_id, "active": active}).ok()[
        "setWebhookActive"
    ]
    return changed


def deliveries(server: Server, key: str, webhook_id: str, status: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        variables = {"webhookId": webhook_id, "status": status, "first": 100, "after": after}
        page = server.gql(key, DELIVERIES, variables).ok()["deliveries"]
        found.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def recover(server: Server, key: str, webhook_id: str, since: datetime) -> GraphQLResult:
    return server.gql(key, RECOVER, {"webhookId": webhook_id, "since": since.isoformat()})


def replay(server: Server, key: str, webhook_id: str, start: datetime, end: datetime | None) -> GraphQLResult:
    return server.gql(
        key,
        REPLAY,
        {"webhookId": webhook_id, "from": start.isoformat(), "to": end.isoformat() if end else None},
    )


def header(request: Received, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


def data(request: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.body)["data"]
    return body


def on_path(receiver: Receiver, path: str) -> list[Received]:
    return [r for r in list(receiver.requests) if r.path == path]


def statuses(delivery: dict[str, Any]) -> list[int | None]:
    return [a["statusCode"] for a in delivery["attempts"]]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def within(predicate: Callable[[], bool], seconds: float) -> bool:
    """Whether `predicate` holds within `seconds` (never raises: for use inside a receiver)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- 1. recoverDeliveries ----------------------------------------------------------------------------


def test_recover_deliveries_sends_each_failed_delivery_once_more_with_its_webhook_id(
    server: Server, accounts: dict[str, str], receiver: Receiver
) -> None:
    admin, viewer, stranger = accounts["recover"], accounts["recover-viewer"], accounts["stranger"]
    target_up = threading.Event()
    receiver.respond = lambda _: (200, {}, "ok") if target_up.is_set() else (500, {}, "down")
    since = now()
    hook = create_webhook(server, admin, receiver.url + "/recover")
    publish_many(server, admin, [{"type": "alert.activated", "payload": {"n": n}} for n in range(10)])

    wait_until(lambda: len(deliveries(server, admin, hook["id"], "FAILED")) == 10, timeout=20)
    failed = deliveries(server, admin, hook["id"])
    assert len(failed) == 10
    assert all(statuses(d) == [500, 500, 500] for d in failed), [statuses(d) for d in failed]
    assert len(receiver.requests) == 30
    failed_ids = {d["id"] for d in failed}
    assert {header(r, "webhook-id") for r in receiver.requests} == failed_ids

    # Refused, out of reach, or out of the window: nothing is sent.
    refused = recover(server, viewer, hook["id"], since)
    assert refused.codes == ["FORBIDDEN"], refused
    unknown = recover(server, stranger, hook["id"], since)
    assert unknown.codes == ["NOT_FOUND"], unknown
    assert recover(server, admin, hook["id"], now()).ok()["recoverDeliveries"] == 0
    time.sleep(0.5)
    assert len(receiver.requests) == 30

    target_up.set()
    with ThreadPoolExecutor(max_workers=2) as pool:  # a second call while the first still runs
        first = pool.submit(recover, server, admin, hook["id"], since)
        second = pool.submit(recover, server, admin, hook["id"], since)
        counts = sorted([first.result().ok()["recoverDeliveries"], second.result().ok()["recoverDeliveries"]])
    assert counts == [0, 10]
    assert recover(server, admin, hook["id"], since).ok()["recoverDeliveries"] == 0  # right after

    wait_until(lambda: len(deliveries(server, admin, hook["id"], "SUCCEEDED")) == 10, timeout=20)
    assert recover(server, admin, hook["id"], since).ok()["recoverDeliveries"] == 0  # once more after
    time.sleep(SETTLE)

    assert len(receiver.requests) == 40
    again = receiver.requests[30:]
    assert sorted(header(r, "webhook-id") or "" for r in again) == sorted(failed_ids)
    for delivery in deliveries(server, admin, hook["id"]):
        assert delivery["status"] == "SUCCEEDED"
        assert statuses(delivery) == [500, 500, 500, 200]
        assert delivery["nextAttemptAt"] is None
        sent = [r for r in receiver.requests if header(r, "webhook-id") == delivery["id"]]
        assert len(sent) == 4
        assert {data(r)["n"] for r in sent} == {data(sent[0])["n"]}


# -- 2. replayEvents ---------------------------------------------------------------------------------


def test_replay_events_delivers_what_an_inactive_webhook_missed_and_nothing_else(
    server: Server, accounts: dict[str, str], receiver: Receiver
) -> None:
    admin, viewer, stranger = accounts["replay"], accounts["replay-viewer"], accounts["stranger"]
    replayed, everything, latecomer = "/replayed", "/everything", "/latecomer"
    eu = [{"conditions": [{"field": "region", "operator": "EQ", "values": ["eu"]}]}]
    start = now()
    hook = create_webhook(server, admin, receiver.url + replayed, filters=eu)
    # Sees every event: once it has one, that event has been fanned out.
    create_webhook(server, admin, receiver.url + everything, eventTypes=["alert.activated", "ticket.created"])

    received = [{"type": "alert.activated", "payload": {"region": "eu", "n": n}} for n in (-2, -1)]
    publish_many(server, admin, received)
    wait_until(lambda: len(on_path(receiver, replayed)) == 2 and len(on_path(receiver, everything)) == 2)

    set_active(server, admin, hook["id"], False)
    missed = [{"type": "alert.activated", "payload": {"region": "eu", "n": n}} for n in range(20)]
    other_type = [{"type": "ticket.created", "payload": {"region": "eu", "n": 100 + n}} for n in range(3)]
    unmatched = [{"type": "alert.activated", "payload": {"region": "us", "n": 200 + n}} for n in range(3)]
    publish_many(server, admin, missed + other_type + unmatched)
    wait_until(lambda: len(on_path(receiver, everything)) == 28, timeout=30)
    assert len(on_path(receiver, replayed)) == 2

    conflict = replay(server, admin, hook["id"], start, None)
    assert conflict.codes == ["CONFLICT"], conflict
    hook = set_active(server, admin, hook["id"], True)
    end = now()
    # Created after the events: replaying gives it those that match, received before or not.
    late = create_webhook(server, admin, receiver.url + latecomer, filters=eu)

    refused = replay(server, viewer, hook["id"], start, end)
    assert refused.codes == ["FORBIDDEN"], refused
    unknown = replay(server, stranger, hook["id"], start, end)
    assert unknown.codes == ["NOT_FOUND"], unknown
    backwards = replay(server, admin, hook["id"], end, start)
    assert backwards.codes == ["BAD_USER_INPUT"], backwards
    # Windows that hold none of the events.
    assert replay(server, admin, hook["id"], start - timedelta(hours=1), start).ok()["replayEvents"] == 0
    assert replay(server, admin, hook["id"], end, None).ok()["replayEvents"] == 0
    time.sleep(0.5)
    assert len(on_path(receiver, replayed)) == 2

    assert replay(server, admin, hook["id"], start, end).ok()["replayEvents"] == 20
    assert replay(server, admin, late["id"], start, end).ok()["replayEvents"] == 22
    wait_until(
        lambda: len(on_path(receiver, replayed)) >= 22 and len(on_path(receiver, latecomer)) >= 22, timeout=30
    )
    assert replay(server, admin, hook["id"], start, end).ok()["replayEvents"] == 0
    assert replay(server, admin, hook["id"], start, None).ok()["replayEvents"] == 0
    assert replay(server, admin, late["id"], start, None).ok()["replayEvents"] == 0
    time.sleep(SETTLE)

    got = on_path(receiver, replayed)
    assert sorted(data(r)["n"] for r in got) == [-2, -1, *range(20)]
    assert len({header(r, "webhook-id") for r in got}) == 22
    assert {json.loads(r.body)["type"] for r in got} == {"alert.activated"}
    assert sorted(data(r)["n"] for r in on_path(receiver, latecomer)) == [-2, -1, *range(20)]
    assert len(on_path(receiver, everything)) == 28
    for webhook_id in (hook["id"], late["id"]):
        made = deliveries(server, admin, webhook_id)
        assert len(made) == 22
        assert {d["status"] for d in made} == {"SUCCEEDED"}


# -- 3. ordered webhooks -----------------------------------------------------------------------------


def test_an_ordered_webhook_receives_events_in_order_and_holds_back_no_other_webhook(
    server: Server, accounts: dict[str, str], receiver: Receiver, second_receiver: Receiver
) -> None:
    admin = accounts["ordered"]
    ordered, unordered = receiver, second_receiver
    released: list[bool] = []

    def answer(received: Received) -> tuple[int, dict[str, str], str]:
        if data(received)["n"] != 5:
            return 200, {}, "ok"
        fives = sum(1 for r in list(ordered.requests) if data(r)["n"] == 5)
        if fives <= 2:
            return 500, {}, "not now"
        # The ordered webhook is stuck at the 5th event: the other one gets everything meanwhile.
        released.append(within(lambda: len(unordered.requests) >= 100, 12))
        return 200, {}, "ok"

    ordered.respond = answer
    hook = create_webhook(server, admin, ordered.url + "/fifo", ordered=True)
    assert hook["ordered"] is True
    plain = create_webhook(server, admin, unordered.url + "/any")
    assert plain["ordered"] is False

    for batch in range(10):
        publish_many(
            server,
            admin,
            [
                {"type": "alert.activated", "payload": {"n": n}}
                for n in range(batch * 10 + 1, batch * 10 + 11)
            ],
        )

    began = time.monotonic()
    if not within(lambda: len(ordered.requests) >= 102, 150):
        arrived = [data(r)["n"] for r in ordered.requests]
        gaps = [round(b.at - a.at, 2) for a, b in itertools.pairwise(ordered.requests)]
        raise AssertionError(f"{len(arrived)} of 102 requests in 150 s: {arrived}; gaps {gaps}")
    took = time.monotonic() - began
    time.sleep(SETTLE)

    arrived = [data(r)["n"] for r in ordered.requests]
    succeeded = [n for i, n in enumerate(arrived) if not (n == 5 and arrived[:i].count(5) < 2)]
    order = f"order of arrival: {arrived}"
    assert list(dict.fromkeys(succeeded)) == list(range(1, 101)), order  # each event's first success
    assert arrived == [1, 2, 3, 4, 5, 5, 5, *range(6, 101)], order
    assert released == [True], "the unordered webhook did not get all 100 events while the ordered one waited"
    assert sorted(data(r)["n"] for r in unordered.requests) == list(range(1, 101))
    print(f"ordered: 102 requests {took:.1f} s after the last publication")  # shown with -s
    fifo = deliveries(server, admin, hook["id"])
    assert len(fifo) == 100
    assert {d["status"] for d in fifo} == {"SUCCEEDED"}


# -- 4. switched off after sustained failure ---------------------------------------------------------


def test_a_webhook_that_only_fails_is_switched_off_and_one_with_successes_is_not(
    disabling_server: Server, receiver: Receiver, org: str
) -> None:
    server = disabling_server
    (admin,) = keys(server, (org, "admin"))
    # "/failing" fails every attempt; "/mixed" fails every attempt of its odd events and takes the even
    # ones at once: failures never stop, but a success comes every 0.8 s or so.
    # "/alerts" takes every `hookline.webhook.disabled`.
    receiver.respond = lambda received: (
        (200, {}, "ok")
        if received.path == "/alerts" or (received.path == "/mixed" and data(received)["n"] % 2 == 0)
        else (500, {}, "broken")
    )
    failing = create_webhook(server, admin, receiver.url + "/failing", eventTypes=["alert.activated"])
    mixed = create_webhook(server, admin, receiver.url + "/mixed", eventTypes=["ticket.created"])
    create_webhook(server, admin, receiver.url + "/alerts", eventTypes=["hookline.webhook.disabled"])

    begun = time.monotonic()
    publish_many(
        server,
        admin,
        [{"type": "alert.activated", "payload": {"n": 0}}, {"type": "ticket.created", "payload": {"n": 1}}],
    )
    switched_off: dict[str, Any] | None = None
    n = 2
    while time.monotonic() - begun < 2.5 * WINDOW or switched_off is None:
        assert time.monotonic() - begun < 20, "the failing webhook was never switched off"
        publish_many(server, admin, [{"type": "ticket.created", "payload": {"n": n}}])
        n += 1
        if switched_off is None and not (found := webhook(server, admin, failing["id"]))["active"]:
            switched_off = found
        assert webhook(server, admin, mixed["id"])["active"] is True, (
            "a webhook with successes was switched off"
        )
        time.sleep(0.4)

    assert switched_off is not None
    assert switched_off["disabledReason"] == "failing"
    records = server.gql(admin, AUDIT_LOG, {"aggregateId": failing["id"]}).ok()["auditLog"]["edges"]
    deactivated = [e["node"] for e in records if e["node"]["eventType"] == "Webhook.Deactivated"]
    assert len(deactivated) == 1, records
    assert deactivated[0]["actor"] == "system"
    assert "failing" in json.dumps(deactivated[0]["data"])
    alerts = wait_until(lambda: [data(r) for r in list(receiver.requests) if r.path == "/alerts"], timeout=10)
    assert alerts == [{"webhook_id": failing["id"], "webhook_name": failing["name"], "reason": "failing"}]
    first_attempt = min(
        instant(a["startedAt"]) for d in deliveries(server, admin, failing["id"]) for a in d["attempts"]
    )
    waited = (instant(deactivated[0]["recordedAt"]) - first_attempt).total_seconds()
    assert waited >= WINDOW, f"switched off {waited:.2f} s after the first failure, before {WINDOW} s"

    still = webhook(server, admin, mixed["id"])
    assert (still["active"], still["disabledReason"]) == (True, None)
    mixed_records = server.gql(admin, AUDIT_LOG, {"aggregateId": mixed["id"]}).ok()["auditLog"]["edges"]
    assert [e["node"]["eventType"] for e in mixed_records] == ["Webhook.Created"]
    outcomes = {d["status"] for d in deliveries(server, admin, mixed["id"])}
    assert "SUCCEEDED" in outcomes, outcomes
    assert outcomes & {"RETRYING", "FAILED"}, outcomes

    # Switched on again by an admin: no reason left, and the old failures no longer count.
    wait_until(
        lambda: all(d["status"] == "FAILED" for d in deliveries(server, admin, failing["id"])), timeout=10
    )
    again = set_active(server, admin, failing["id"], True)
    assert (again["active"], again["disabledReason"]) == (True, None)
    assert webhook(server, admin, failing["id"])["disabledReason"] is None
    time.sleep(WINDOW * 0.75)  # more than one check of the watchdog
    assert webhook(server, admin, failing["id"])["active"] is True
