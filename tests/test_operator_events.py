"""Operator events through real traffic: a real `hookline serve` (both modes) whose webhook answers 500,
then 410, and an alert webhook with a Teams-style template (and a plain one beside it) that hears of it
by `hookline.webhook.failing`, `hookline.delivery.failed` and `hookline.webhook.disabled`; nothing is
ever sent to the failing webhook about itself; each threshold once while workers record 100 failures of
one webhook at once (which races them on its streak). Then the rules of the streak that decides `failing`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.deliveries import Attempt
from domain.events import Publication, check_publication
from domain.operations import FailureStreak, parse_thresholds
from harness.receiver import Received
from tests.conftest import MODES
from tests.support import Receiver, Server, running_server, wait_until
from tests.test_distributed import create_webhook, publish, publish_many

OPERATOR_TYPES = ["hookline.webhook.failing", "hookline.delivery.failed", "hookline.webhook.disabled"]
# The README's worked Teams template (a Workflows message with an Adaptive Card), as it is written there.
README = (Path(__file__).parent.parent / "README.md").read_text()
TEAMS_TEMPLATE = README.split("**Routing them to Teams.**", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
# Five quick retries (six attempts), the last one late enough for `failing` (at 5) to arrive first.
SCHEDULE = "0.2,0.2,0.2,0.2,3"


def body(request: Received) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(request.body)
    return parsed


def operator_events(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [body(r) for r in list(receiver.requests) if r.path == path]


def card_title(card: dict[str, Any]) -> str:
    title: str = card["attachments"][0]["content"]["body"][0]["text"]
    return title


ORG = "operations"  # each test has a server of its own


@contextmanager
def failing_target(tmp_path: Path, mode: str, **env: str) -> Iterator[tuple[Server, Receiver, Receiver]]:
    """A real `hookline serve` with `env`, a target that answers 500 and a receiver for the alerts."""
    with (
        Receiver() as target,
        Receiver() as alerts,
        running_server(tmp_path, mode, workers=2, HOOKLINE_ALLOW_PRIVATE_TARGETS="true", **env) as server,
    ):
        target.respond = lambda _: (500, {}, "down")
        yield server, target, alerts


@pytest.mark.parametrize("mode", MODES)
def test_an_alert_webhook_hears_of_a_failing_webhook_which_hears_nothing_of_itself(
    tmp_path: Path, mode: str
) -> None:
    with failing_target(tmp_path, mode, HOOKLINE_RETRY_SCHEDULE=SCHEDULE) as (server, target, alerts):
        admin, publisher = server.key(ORG, "admin"), server.key(ORG, "publisher")
        # The failing webhook takes operator events too: those about itself must never reach it.
        failing = create_webhook(
            server,
            admin,
            target.url + "/hooks",
            name="ServiceNow",
            eventTypes=["alert.activated", *OPERATOR_TYPES],
        )
        teams = create_webhook(
            server,
            admin,
            alerts.url + "/teams",
            name="Ops channel",
            eventTypes=OPERATOR_TYPES,
            payloadTemplate=TEAMS_TEMPLATE,
        )
        create_webhook(server, admin, alerts.url + "/raw", name="Pager", eventTypes=OPERATOR_TYPES)

        event_id = publish(server, publisher, 1)
        raw = wait_until(lambda: len(found := operator_events(alerts, "/raw")) >= 2 and found, timeout=40)
        assert [e["type"] for e in raw] == ["hookline.webhook.failing", "hookline.delivery.failed"]
        failing_event, failed_event = (e["data"] for e in raw)
        since = datetime.fromisoformat(failing_event.pop("failing_since").replace("Z", "+00:00"))
        assert abs(since - datetime.now(UTC)) < timedelta(minutes=1)
        assert failing_event == {
            "webhook_id": failing["id"],
            "webhook_name": "ServiceNow",
            "consecutive_failures": 5,
            "last_status_code": 500,
            "last_error": "HTTP 500",
        }
        delivery_id = target.requests[0].headers["webhook-id"]
        assert failed_event == {
            "delivery_id": delivery_id,
            "webhook_id": failing["id"],
            "webhook_name": "ServiceNow",
            "event_id": event_id,
            "event_type": "alert.activated",
            "attempts": 6,
            "last_status_code": 500,
            "last_error": "HTTP 500",
        }

        target.respond = lambda _: (410, {}, "gone")
        publish(server, publisher, 2)
        raw = wait_until(lambda: len(found := operator_events(alerts, "/raw")) >= 4 and found, timeout=40)
        by_type = {e["type"]: e["data"] for e in raw[2:]}
        assert by_type["hookline.webhook.disabled"] == {
            "webhook_id": failing["id"],
            "webhook_name": "ServiceNow",
            "reason": "gone",
        }
        assert by_type["hookline.delivery.failed"]["attempts"] == 1
        assert by_type["hookline.delivery.failed"]["last_status_code"] == 410

        cards = wait_until(lambda: len(found := operator_events(alerts, "/teams")) >= 4 and found, timeout=20)
        titles = [card_title(card) for card in cards]
        assert titles[:2] == ["hookline.webhook.failing: ServiceNow", "hookline.delivery.failed: ServiceNow"]
        assert sorted(titles[2:]) == [
            "hookline.delivery.failed: ServiceNow",
            "hookline.webhook.disabled: ServiceNow",
        ]
        facts = cards[0]["attachments"][0]["content"]["body"][1]["facts"]
        assert facts[1] == {"title": "Webhook id", "value": failing["id"]}
        assert facts[2] == {"title": "Organisation", "value": ORG}

        # The failing webhook got its own events' attempts only: 6, then 1 (which switched it off).
        assert {body(r)["type"] for r in target.requests} == {"alert.activated"}
        assert len(target.requests) == 7
        assert all(r.headers["webhook-id"] != teams["id"] for r in target.requests)
        # Nothing more comes: each threshold once per streak, each end once.
        assert len(operator_events(alerts, "/raw")) == 4


@pytest.mark.parametrize("mode", MODES)
def test_each_threshold_is_published_once_while_workers_record_a_webhooks_failures_at_once(
    tmp_path: Path, mode: str
) -> None:
    with failing_target(
        tmp_path, mode, HOOKLINE_RETRY_SCHEDULE="0.1", HOOKLINE_FAILING_THRESHOLDS="5,20,100"
    ) as (server, target, alerts):
        admin, publisher = server.key(ORG, "admin"), server.key(ORG, "publisher")
        create_webhook(server, admin, target.url + "/hooks")
        create_webhook(server, admin, alerts.url + "/raw", eventTypes=["hookline.webhook.failing"])

        publish_many(server, publisher, 50)  # from 8 threads: two attempts each, 100 failures at once
        target.wait_for(100, timeout=30)
        found = wait_until(lambda: len(found := operator_events(alerts, "/raw")) >= 3 and found, timeout=20)
        time.sleep(1.0)  # nothing more comes
        counts = sorted(e["data"]["consecutive_failures"] for e in operator_events(alerts, "/raw"))
        assert counts == [5, 20, 100], found
        assert len(target.requests) == 100


def test_only_hookline_publishes_operator_events() -> None:
    problems = check_publication(Publication("hookline.webhook.failing", {"webhook_id": "x"}), 1024)
    assert [(p.field, p.message) for p in problems] == [
        ("type", "hookline.* types are published by Hookline itself")
    ]


def failed(at: int, status: int | None = 500) -> Attempt:
    return Attempt(1, datetime(2026, 12, 7, 9, 0, at, tzinfo=UTC), 10.0, status, None, None)


def test_each_threshold_is_reached_once_per_streak_and_a_success_ends_the_streak() -> None:
    streak = FailureStreak(uuid.uuid4())
    reached = streak.count([failed(s) for s in range(4)], (3, 5))
    assert [(r.streak, r.failures, r.since.second) for r in reached] == [(1, 3, 0)]
    reached = streak.count([failed(4, None)], (3, 5))  # no response: a failure too
    assert [(r.failures, r.since.second, r.attempt.status_code) for r in reached] == [(5, 0, None)]
    assert streak.count([failed(s) for s in range(6, 9)], (3, 5)) == []
    # A success ends the streak; a new one reports each threshold again, named by its own number.
    reached = streak.count([failed(9, 200), *(failed(s) for s in range(10, 13))], (3, 5))
    assert [(r.streak, r.failures, r.since.second, r.attempt.status_code) for r in reached] == [
        (2, 3, 10, 500)
    ]
    assert streak.failures == 3


def test_nothing_is_recorded_for_successes_outside_a_streak() -> None:
    streak = FailureStreak(uuid.uuid4())
    streak.collect_events()
    assert streak.count([failed(1, 200), failed(2, 204)], (5,)) == []
    assert streak.collect_events() == []


@pytest.mark.parametrize(
    ("text", "message"),
    [("5,x", "whole numbers"), ("0,5", "at least 1"), ("20,5", "must increase"), ("5,5", "must increase")],
)
def test_thresholds_are_positive_and_increasing(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_thresholds(text)
    assert parse_thresholds("5,20,100") == (5, 20, 100)
