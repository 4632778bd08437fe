"""The two jobs, whichever queue runs them: fan an event out, deliver one delivery. Both rerun safely.

Their writes go through batchers, so that many jobs running at once share few transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import PersistenceError
from opentelemetry.trace import Tracer
from redis.exceptions import RedisError

from domain.application import Hookline, NotDue, NothingToSend, Prepared, PreparedDelivery
from domain.deliveries import Attempt, Delivery
from domain.requests import Send
from domain.service.base import all_or_each
from workers.batching import Batcher
from workers.jobtypes import DONE, Deliver, FanOut, Job, Later, Outcome
from workers.ratelimit import RateLimiter
from workers.slots import Slot, WebhookSlots
from workers.tracing import traced_fan_out, traced_send

log = structlog.get_logger("hookline.jobs")

R = TypeVar("R")


# What a job stands on failing (the store, Redis, the network): the queue tries the job again for as
# long as that lasts. Any other error is the job's own and would fail every rerun the same way.
OUTAGES = (PersistenceError, sqlite3.Error, psycopg.Error, RedisError, OSError)
MAX_TRIES = 3  # runs of a job that fail with an error of its own before this process gives it up
REMEMBERED = 10_000  # jobs whose failures are counted, at most (the oldest are forgotten)


class Jobs:
    """The fan-out and deliver jobs of a process, whichever queue runs them; a delivery is sent
    within the process's delivery slots (`slots`, see `workers.slots`). With a `tracer`, each fan-out
    and attempt is a span (see `workers.tracing`); without one, no span is made at all."""

    def __init__(
        self,
        app: Hookline,
        send: Send,
        limiter: RateLimiter,
        slots: WebhookSlots,
        tracer: Tracer | None = None,
    ) -> None:
        self.app = app
        self.send = send
        self.limiter = limiter
        self.slots = slots
        self.tracer = tracer
        self._failures: OrderedDict[UUID, int] = OrderedDict()  # jobs' runs failed by their own error
        self._fan_outs: Batcher[UUID, list[UUID]] = Batcher(self._fan_out_all)
        self._records: Batcher[tuple[Delivery, Attempt], None] = Batcher(self._record_all)
        # Preparing is a read: nothing is gained by waiting for more, and a delivery waits for it.
        self._prepares: Batcher[tuple[UUID, int | None], Prepared] = Batcher(self._prepare_all, max_wait=0)

    async def run(self, job: Job) -> Outcome:
        """Runs a job of the in-process queue."""
        match job:
            case Deliver(delivery_id):
                return await self.deliver(delivery_id)
            case FanOut(event_id, trace_parent):
                await self.fan_out(event_id, trace_parent)
                return DONE

    async def fan_out(self, event_id: UUID, trace_parent: str | None = None) -> list[UUID]:
        """Fans the event out; `trace_parent`, its publish's traceparent, is what its span continues."""
        if self.tracer is not None:
            return await traced_fan_out(self.tracer, event_id, trace_parent, lambda: self._fan_out(event_id))
        return await self._fan_out(event_id)

    async def _fan_out(self, event_id: UUID) -> list[UUID]:
        made = await self._bounded("fan_out", event_id, lambda: self._fan_outs.submit(event_id))
        return made or []

    async def deliver(self, delivery_id: UUID, due: int | None = None) -> Outcome:
        """Makes the delivery's next attempt, if it is due; `due` (see `due_key`) is the attempt time
        the job was queued for, if it names one."""
        outcome = await self._bounded("deliver", delivery_id, lambda: self._deliver(delivery_id, due))
        return DONE if outcome is None else outcome

    async def _bounded(self, kind: str, item: UUID, run: Callable[[], Awaitable[R]]) -> R | None:
        """Runs a job, counting its runs that fail with an error of its own: after MAX_TRIES this
        process gives it up (logged once), however often the queue reruns it or a sweep queues it."""
        if self._failures.get(item, 0) >= MAX_TRIES:
            return None
        try:
            result = await run()
        except OUTAGES:
            raise
        except Exception as error:
            failures = self._failures.pop(item, 0) + 1
            self._failures[item] = failures
            if len(self._failures) > REMEMBERED:
                self._failures.popitem(last=False)
            if failures < MAX_TRIES:
                raise
            log.error(
                "a job failed each time it ran; given up",
                job=kind,
                id=str(item),
                tries=failures,
                exc_info=error,
            )
            return None
        self._failures.pop(item, None)
        return result

    async def _deliver(self, delivery_id: UUID, due: int | None) -> Outcome:
        """Prepares the request, waits for its rate limit and sends it within a slot. When the read
        model knows the delivery's webhook and organisation, a busy one is seen before the (costly)
        preparation."""
        slot: Slot | None = None
        known = await self._known_slot(delivery_id)
        if known is not None:
            early = await self.slots.before_preparing(known, delivery_id)
            if isinstance(early, Slot):
                slot = early
            elif early is not None:
                return early
        try:
            prepared = await self._prepare(delivery_id, due)
            if not isinstance(prepared, PreparedDelivery):
                return prepared
            if prepared.rate_limit_per_second is not None:
                wait = await self.limiter.acquire(prepared.webhook_id, prepared.rate_limit_per_second)
                if wait > 0:
                    return Later(wait)
            if slot is None:
                wanted = Slot(prepared.webhook_id, prepared.delivery.organization_id)
                taken = await self.slots.before_sending(wanted, delivery_id)
                if not isinstance(taken, Slot):
                    return taken
                slot = taken
            if self.tracer is None:
                attempt = await self.send(prepared.request, prepared.delivery.next_attempt_number)
            else:
                attempt = await traced_send(self.tracer, self.send, prepared)
        finally:
            if slot is not None:
                self.slots.give_back(slot)
        await self._records.submit((prepared.delivery, attempt))
        log.debug(
            "attempt recorded",
            delivery_id=str(delivery_id),
            attempt=attempt.number,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )
        return DONE

    # What follows calls into the application.

    async def _known_slot(self, delivery_id: UUID) -> Slot | None:
        """The delivery's webhook and organisation as the read model has them: from memory, or read
        when the slots are contended (it matters then); None when unknown."""
        known = self.app.views.held(delivery_id)
        if known is None and self.slots.contended():
            known = (await asyncio.to_thread(self.app.views.states, [delivery_id])).get(delivery_id)
        return Slot(known.webhook_id, known.organization_id) if isinstance(known, Delivery) else None

    async def _prepare(self, delivery_id: UUID, due: int | None) -> PreparedDelivery | Outcome:
        """The request to send, prepared in a batch with other jobs'; or the job's outcome when there
        is none: the delivery is done, not due yet (an early or repeated job), or its request cannot
        be made (recorded as a failed attempt, see `_unmade`)."""
        try:
            prepared = await self._prepares.submit((delivery_id, due))
        except OUTAGES:
            raise
        except Exception as error:
            await self._unmade(delivery_id, error)
            return DONE
        if isinstance(prepared, NothingToSend):
            return DONE
        if isinstance(prepared, NotDue):
            return Later(max((prepared.at - self.app.clock()).total_seconds(), 0.0))
        return prepared

    async def _unmade(self, delivery_id: UUID, error: Exception) -> None:
        """Preparing the request raised an error of its own (one no rerun mends): recorded as the
        attempt's error, naming only its type (its message may hold what was being prepared), and
        logged once with the delivery's id."""
        message = f"the request could not be made: {type(error).__name__}"
        log.warning(
            "an attempt could not be made", delivery_id=str(delivery_id), error=message, exc_info=error
        )
        await asyncio.to_thread(self.app.record_unmade_attempt, delivery_id, message)

    def _fan_out_all(self, event_ids: Sequence[UUID]) -> Sequence[list[UUID] | Exception]:
        return all_or_each(self.app.fan_out_many, event_ids)

    def _prepare_all(self, jobs: Sequence[tuple[UUID, int | None]]) -> Sequence[Prepared | Exception]:
        return all_or_each(self.app.prepare_deliveries, jobs)

    def _record_all(self, attempts: Sequence[tuple[Delivery, Attempt]]) -> list[None]:
        self.app.record_attempts(attempts)
        return [None] * len(attempts)
