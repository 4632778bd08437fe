"""The Delivery aggregate: one event sent to one webhook, with every attempt it took."""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
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
    erased: bool = False  # its response body was erased (`store.erasure`)
    erased_at: datetime | None = None  # when

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_data(self) -> dict[str, Any]:
        # Every field is immutable: a copy of the fields will do, and dataclasses.asdict's deep copy
        # of each value would weigh on every attempt recorded.
        data = dict(vars(self))
        if not self.erased:  # stored only once erased
            del data["erased"], data["erased_at"]
        return data

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
    """One (event, webhook) pair; its id is derived from both, so a second fan-out cannot repeat it.

    An event's fan-out records the deliveries it owes (`Event.fan_out`); each is stored when its first
    attempt ends, created and attempted in one event (`Attempted`), so that a delivery that succeeds
    at once is one stored event. Until then it is `owed`: PENDING, built from its event."""

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

    @classmethod
    def owed(cls, event: Event, webhook_id: UUID, delivery_id: UUID) -> Delivery:
        """The delivery that an event's fan-out owes to a webhook (`Event.owed`: its id given, as
        derived), before anything about it is stored: PENDING since the event was fanned out. Saved
        as it is, it records its creation; `attempted` records its first attempt with it instead."""
        delivery = cls._create(
            getattr(cls, "Created"),  # noqa: B009 - the class @event("Created") made
            id=delivery_id,
            timestamp=event.modified_on,
            event_id=event.id,
            webhook_id=webhook_id,
            organization_id=event.organization_id,
            event_type=event.type,
        )
        delivery.unrecorded = True
        return delivery

    def attempted(self, attempt: Attempt, next_attempt_at: datetime | None) -> Delivery:
        """An owed delivery (`owed`) created at its first attempt's outcome: one event."""
        return type(self)._create(
            Delivery.Attempted,
            id=self.id,
            event_id=self.event_id,
            webhook_id=self.webhook_id,
            organization_id=self.organization_id,
            event_type=self.event_type,
            owed_since=self.created_on,
            attempt=attempt.to_data(),
            next_attempt_at=None if attempt.succeeded else next_attempt_at,
        )

    class Attempted(Aggregate.Created):
        """Created at its first attempt's outcome (the fan-out that owed it is `owed_since`)."""

        event_id: UUID
        webhook_id: UUID
        organization_id: UUID
        event_type: str
        owed_since: datetime
        attempt: dict[str, Any]
        next_attempt_at: datetime | None

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Delivery)
            aggregate._created_on = self.owed_since
            aggregate._append_attempt(self.attempt, self.next_attempt_at)

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
        self.unrecorded = False  # owed, and nothing about it stored yet (see `owed`)

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
        self._append_attempt(attempt, None)

    @event("AttemptFailed")
    def _attempt_failed(self, attempt: dict[str, Any], next_attempt_at: datetime | None) -> None:
        self._append_attempt(attempt, next_attempt_at)

    def _append_attempt(self, attempt: dict[str, Any], next_attempt_at: datetime | None) -> None:
        """An attempt's outcome (a failed one's next attempt time, None: no more)."""
        self.attempt_data.append(attempt)
        self.redelivery_requested = False
        if Attempt.from_data(attempt).succeeded:
            self.status, self.next_attempt_at = DeliveryStatus.SUCCEEDED, None
        else:
            self.next_attempt_at = next_attempt_at
            self.status = DeliveryStatus.RETRYING if next_attempt_at else DeliveryStatus.FAILED


class OwedDeliveries:
    """The event that owes each delivery this process heard of, the latest `size` of them: from a
    fan-out here (the event itself, as just saved), or a job that named it (its id). An owed
    delivery's first attempt is built from it without waiting for the read model's rows of owed
    deliveries, nor, when the fan-out ran here, reading the event again. Thread-safe."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._events: OrderedDict[UUID, Event | UUID] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, delivery_ids: Iterable[UUID], event: Event | UUID) -> None:
        """(An event held here is kept when a job names it again: it need not be read.)"""
        with self._lock:
            for delivery_id in delivery_ids:
                held = self._events.get(delivery_id)
                if not (isinstance(event, UUID) and isinstance(held, Event) and held.id == event):
                    self._events[delivery_id] = event
            while len(self._events) > self.size:
                self._events.popitem(last=False)

    def owing(self, delivery_ids: Sequence[UUID]) -> dict[UUID, Event | UUID]:
        """The event (or its id) of each delivery remembered, by delivery."""
        events = self._events
        return {i: event for i in delivery_ids if (event := events.get(i)) is not None}


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
