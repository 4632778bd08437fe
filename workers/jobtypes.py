"""What a job is (fan an event out, attempt a delivery: ids only) and what running one answers: done,
or when the queue runs it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID


@dataclass(frozen=True, slots=True)
class FanOut:
    event_id: UUID
    # The publish's traceparent, for the fan-out's span; not part of what the job is (a job queued
    # again by the sweeper, without it, is the same job).
    trace_parent: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Deliver:
    delivery_id: UUID


Job = FanOut | Deliver


@dataclass(frozen=True, slots=True)
class Done:
    """Nothing more for the queue to do: sent and recorded, nothing left to send, or given up."""


@dataclass(frozen=True, slots=True)
class Parked:
    """Off the queue until a send of its webhook or organisation ends, which queues it again (see
    `workers.slots.ParkingSlots`): waiting there, it holds none of the queue's consumers."""


@dataclass(frozen=True, slots=True)
class Later:
    """Run again `seconds` from now: the delivery is not due yet, or its webhook's rate limit is spent."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Busy:
    """Run again soon: its webhook or organisation had its share of sends in flight (see
    `workers.slots.HoldingSlots`). `seconds` is not a time the delivery must wait, so the queue may
    keep the job's place among those queued with it."""

    seconds: float


Outcome = Done | Parked | Later | Busy
DONE = Done()
PARKED = Parked()
