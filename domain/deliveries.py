"""The Delivery aggregate: one event sent to one webhook, with every attempt it took."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import Conflict
from domain.events import Event

MAX_RESPONSE_BODY = 4096


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Attempt:
    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None
    retry_after: str | None = None  # the target's Retry-After header, as it came

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_data(self) -> dict[str, Any]:
        # Every field is immutable: a copy of the fields will do, and dataclasses.asdict's deep copy
        # of each value would weigh on every attempt recorded.
        return dict(vars(self))

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Attempt:
        return cls(**data)


def cap_response_body(raw: bytes) -> str:
    """At most MAX_RESPONSE_BODY bytes of a response, decoded leniently."""
    return raw[:MAX_RESPONSE_BODY].decode("utf-8", errors="replace")


def due_key(at: datetime | None) -> int:
    """A due time as whole milliseconds (0 for "now"): what names the job for one attempt."""
    return int(at.timestamp() * 1000) if at else 0


class Delivery(Aggregate):
    """One (event, webhook) pair; its id is derived from both, so a second fan-out cannot repeat it."""

    @staticmethod
    def create_id(event_id: UUID, webhook_id: UUID, **_: Any) -> UUID:
        return ids.delivery_id(event_id, webhook_id)

    @classmethod
    def for_event(cls, event: Event, webhook_id: UUID) -> Delivery:
        """The delivery of an event to one of its organisation's webhooks."""
        return cls(
            event_id=event.id,
            webhook_id=webhook_id,
            organization_id=event.organization_id,
            event_type=event.type,
        )

    @event("Created")
    def __init__(
        self,
        event_id: UUID,
        webhook_id: UUID,
        organization_id: UUID,
        event_type: str,
    ) -> None:
        self.event_id = event_id
        self.webhook_id = webhook_id
        self.organization_id = organization_id
        self.event_type = event_type
        self.status: str = DeliveryStatus.PENDING
        self.attempt_data: list[dict[str, Any]] = []
        self.next_attempt_at: datetime | None = None
        self.redelivery_requested = False
        self.abandoned_reason: str | None = None

    @property
    def attempts(self) -> list[Attempt]:
        return [Attempt.from_data(a) for a in self.attempt_data]

    @property
    def finished(self) -> bool:
        return self.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)

    @property
    def next_attempt_number(self) -> int:
        return len(self.attempt_data) + 1

    def check_may_redeliver(self) -> None:
        if self.status == DeliveryStatus.PENDING:
            raise Conflict("the delivery is being sent right now; wait for its attempt")

    def redeliver(self, actor: str, now: datetime) -> None:
        """One more attempt, with the same `webhook-id`; if it fails, the delivery fails again."""
        self.check_may_redeliver()
        self._redelivery_requested(actor=actor, at=now)

    @event("RedeliveryRequested")
    def _redelivery_requested(self, actor: str, at: datetime) -> None:
        self.next_attempt_at = at
        if self.finished:  # one more attempt; a delivery still retrying keeps its schedule
            self.status = DeliveryStatus.PENDING
            self.redelivery_requested = True

    def abandon(self, reason: str) -> None:
        """No attempt will be made (the webhook is gone or switched off): the delivery fails as it is."""
        if not self.finished:
            self._abandoned(reason=reason)

    @event("Abandoned")
    def _abandoned(self, reason: str) -> None:
        self.status = DeliveryStatus.FAILED
        self.next_attempt_at = None
        self.abandoned_reason = reason

    def record_attempt(self, attempt: Attempt, next_attempt_at: datetime | None) -> None:
        """An attempt's outcome: success, or failure with the time of the next try (None: no more)."""
        if self.redelivery_requested:
            next_attempt_at = None
        if attempt.succeeded:
            self._attempt_succeeded(attempt=attempt.to_data())
        else:
            self._attempt_failed(attempt=attempt.to_data(), next_attempt_at=next_attempt_at)

    @event("AttemptSucceeded")
    def _attempt_succeeded(self, attempt: dict[str, Any]) -> None:
        self.attempt_data.append(attempt)
        self.redelivery_requested = False
        self.status = DeliveryStatus.SUCCEEDED
        self.next_attempt_at = None

    @event("AttemptFailed")
    def _attempt_failed(self, attempt: dict[str, Any], next_attempt_at: datetime | None) -> None:
        self.attempt_data.append(attempt)
        self.redelivery_requested = False
        self.next_attempt_at = next_attempt_at
        self.status = DeliveryStatus.RETRYING if next_attempt_at else DeliveryStatus.FAILED


@dataclass(frozen=True)
class DeliveryUpdate:
    """A delivery's state right after one of its events: what live subscribers receive."""

    position: int
    organization_id: UUID
    delivery_id: UUID
    webhook_id: UUID
    event_id: UUID
    status: str
    attempt: int | None
    status_code: int | None
    at: datetime

    @classmethod
    def of(cls, position: int, delivery: Delivery) -> DeliveryUpdate:
        last = delivery.attempt_data[-1] if delivery.attempt_data else None
        return cls(
            position=position,
            organization_id=delivery.organization_id,
            delivery_id=delivery.id,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            status=delivery.status,
            attempt=last["number"] if last else None,
            status_code=last["status_code"] if last else None,
            at=delivery.modified_on,
        )
