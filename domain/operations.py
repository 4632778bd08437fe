"""Operator events: what Hookline publishes, as `system`, about its own webhooks and deliveries.

They are ordinary events of the webhook's organisation (an admin subscribes to them with conditions and
a template), with two rules of their own: an event about webhook W is never delivered to W, and a
failed delivery of a `hookline.delivery.failed` event publishes no further one (two failing alert
webhooks would otherwise tell each other about each other's failures forever).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.deliveries import Attempt, Delivery, DeliveryStatus
from domain.events import Event
from domain.roles import SYSTEM_ACTOR

WEBHOOK_FAILING = "hookline.webhook.failing"
WEBHOOK_DISABLED = "hookline.webhook.disabled"
DELIVERY_FAILED = "hookline.delivery.failed"
OPERATOR_TYPES = (WEBHOOK_FAILING, WEBHOOK_DISABLED, DELIVERY_FAILED)
DEFAULT_FAILING_THRESHOLDS = (5, 20, 100)

_STREAK_NS = UUID("0d6f4b1e-2a8c-4f57-9e13-6b7c0a9d2e48")


def parse_thresholds(text: str) -> tuple[int, ...]:
    """`HOOKLINE_FAILING_THRESHOLDS`: comma-separated counts of consecutive failed attempts, each a
    positive integer, given in increasing order (e.g. "5,20,100")."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError("must be comma-separated whole numbers, e.g. 5,20,100") from None
    if any(count < 1 for count in counts):
        raise ValueError("each threshold must be at least 1")
    if list(counts) != sorted(set(counts)):
        raise ValueError("thresholds must increase, e.g. 5,20,100")
    return counts


def timestamp(at: datetime) -> str:
    """A payload's time, as the catalogue's samples write it: UTC, whole seconds, `Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def about_webhook(event: Event) -> UUID | None:
    """The webhook an operator event is about (never delivered to it); None for any other event."""
    if event.type not in OPERATOR_TYPES:  # (which only Hookline may publish: `check_publication`)
        return None
    try:
        return UUID(str((event.payload or {}).get("webhook_id")))
    except ValueError:
        return None


def _operator_event(
    organization_id: UUID, type: str, key: str, payload: dict[str, Any], now: datetime
) -> Event:
    # The idempotency key derives the event's id from what it reports: recording it twice conflicts.
    return Event(
        organization_id=organization_id,
        type=type,
        payload=payload,
        occurred_at=now,
        idempotency_key=f"{type}/{key}",
        actor=SYSTEM_ACTOR,
    )


def webhook_disabled(
    organization_id: UUID, webhook_id: UUID, webhook_name: str, reason: str, version: int, now: datetime
) -> Event:
    """`hookline.webhook.disabled` for a webhook switched off (reason `gone` or `failing`) at that
    version of it."""
    payload = {"webhook_id": str(webhook_id), "webhook_name": webhook_name, "reason": reason}
    return _operator_event(organization_id, WEBHOOK_DISABLED, f"{webhook_id}/{version}", payload, now)


def reports_failure(delivery: Delivery) -> bool:
    """Whether a delivery just attempted ended FAILED and gets its `hookline.delivery.failed`: unless
    it delivered one itself (no chain of them). (One abandoned when its webhook was switched off or
    deleted gets none: `hookline.webhook.disabled` tells of that.)"""
    return (
        delivery.status == DeliveryStatus.FAILED
        and bool(delivery.attempt_data)
        and delivery.event_type != DELIVERY_FAILED
    )


def delivery_failed(delivery: Delivery, webhook_name: str, now: datetime) -> Event:
    """`hookline.delivery.failed` for a delivery whose last attempt has just ended it FAILED."""
    last = Attempt.from_data(delivery.attempt_data[-1])
    payload = {
        "delivery_id": str(delivery.id),
        "webhook_id": str(delivery.webhook_id),
        "webhook_name": webhook_name,
        "event_id": str(delivery.event_id),
        "event_type": delivery.event_type,
        "attempts": len(delivery.attempt_data),
        "last_status_code": last.status_code,
        "last_error": last.error,
    }
    key = f"{delivery.id}/{len(delivery.attempt_data)}"  # a redelivery that fails again is another end
    return _operator_event(delivery.organization_id, DELIVERY_FAILED, key, payload, now)


@dataclass(frozen=True)
class Reached:
    """A threshold of consecutive failed attempts that a streak reached, with the attempt that did."""

    streak: int
    failures: int
    since: datetime
    attempt: Attempt


class FailureStreak(Aggregate):
    """A webhook's consecutive failed attempts (across its deliveries), and which thresholds this streak
    has reached: saved in the transaction that records the attempts, so that each threshold is
    reported once per streak whatever the workers and retries. A successful attempt ends the streak.

    Apart from the webhook, so that counting does not change the webhook's version (which its
    deliveries are fanned out at and its saved specs are cached by)."""

    @staticmethod
    def create_id(webhook_id: UUID) -> UUID:
        return uuid5(_STREAK_NS, webhook_id.hex)

    @event("Started")
    def __init__(self, webhook_id: UUID) -> None:
        self.webhook_id = webhook_id
        self.streak = 0  # how many streaks there have been: names this one's reports
        self.failures = 0
        self.since: datetime | None = None

    def count(self, attempts: Sequence[Attempt], thresholds: Sequence[int]) -> list[Reached]:
        """Counts attempts, in order: the thresholds reached, each with the streak's start and the
        attempt that reached it. Records nothing when nothing changed (successes outside a streak)."""
        streak, failures, since = self.streak, self.failures, self.since
        reached: list[Reached] = []
        for attempt in attempts:
            if attempt.succeeded:
                failures, since = 0, None
                continue
            if failures == 0:
                streak, since = streak + 1, attempt.started_at
            failures += 1
            if failures in thresholds and since is not None:
                reached.append(Reached(streak, failures, since, attempt))
        if (streak, failures, since) != (self.streak, self.failures, self.since):
            self._counted(streak=streak, failures=failures, since=since)
        return reached

    @event("Counted")
    def _counted(self, streak: int, failures: int, since: datetime | None) -> None:
        self.streak, self.failures, self.since = streak, failures, since


def webhook_failing(
    organization_id: UUID, webhook_id: UUID, webhook_name: str, reached: Reached, now: datetime
) -> Event:
    """`hookline.webhook.failing` for a threshold that a streak of the webhook's reached."""
    payload = {
        "webhook_id": str(webhook_id),
        "webhook_name": webhook_name,
        "consecutive_failures": reached.failures,
        "failing_since": timestamp(reached.since),
        "last_status_code": reached.attempt.status_code,
        "last_error": reached.attempt.error,
    }
    key = f"{webhook_id}/{reached.streak}/{reached.failures}"
    return _operator_event(organization_id, WEBHOOK_FAILING, key, payload, now)
