"""The two jobs, whichever queue runs them: fan an event out, deliver one delivery. Both rerun safely.

Their writes go through batchers, so that many jobs running at once share few transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import PersistenceError
from redis.exceptions import RedisError

from domain.application import Hookline, NotDue, NothingToSend, Prepared
from domain.deliveries import Attempt, Delivery
from domain.requests import Send
from domain.service.base import all_or_each
from workers.batching import Batcher
from workers.ratelimit import RateLimiter

log = structlog.get_logger("hookline.jobs")

T = TypeVar("T")
R = TypeVar("R")


# Sends in flight to one webhook at once, per process: a target that hangs holds at most this many
# of the process's slots, and the other webhooks' deliveries keep flowing.
PER_WEBHOOK = 32
BUSY_WAIT = 0.5  # without `requeue` (arq), a job for a busy webhook tries again this much later
SLOT_HOLD = 0.05  # ... after holding its job slot this long for one of the webhook's sends to end


# What a job stands on failing (the store, Redis, the network): the queue tries the job again for as
# long as that lasts. Any other error is the job's own and would fail every rerun the same way.
OUTAGES = (PersistenceError, sqlite3.Error, psycopg.Error, RedisError, OSError)
MAX_TRIES = 3  # runs of a job that fail with an error of its own before this process gives it up
REMEMBERED = 10_000  # jobs whose failures are counted, at most (the oldest are forgotten)

Slot = tuple[UUID, UUID]  # a send's webhook and organisation


class Busy(float):
    """The wait of a job put back because its webhook's share of sends was in flight: not a time the
    delivery must wait (as a rate limit's or a retry's is), so the queue may keep its place."""


def embedded_share(delivery_concurrency: int) -> int:
    """One webhook's slots in `serve`'s own queue: at most half of them (PER_WEBHOOK of the default 64),
    so a hanging target leaves the other half to the other webhooks. Its waiting deliveries are off
    the queue (parked), so they hold no slot while they wait."""
    return min(PER_WEBHOOK, max(1, delivery_concurrency // 2))


def worker_share(worker_jobs: int) -> int:
    """One webhook's slots in a `hookline worker` running `worker_jobs` jobs: at most 40 % of them, so
    the jobs a hanging target holds, and those bouncing off it, leave room for the others."""
    return min(PER_WEBHOOK, max(1, worker_jobs * 2 // 5))


def embedded_reserve(delivery_concurrency: int) -> int:
    """Slots `serve`'s queue runs beyond HOOKLINE_DELIVERY_CONCURRENCY, which is what the
    organisations with sends in flight share (see `Jobs`): a quarter more, there at once for an
    organisation with none in flight while the others' targets hang. Kept apart rather than taken
    from the concurrency, so that an organisation alone still has all of it."""
    return max(1, delivery_concurrency // 4)


def worker_organizations(worker_jobs: int) -> int:
    """The slots of a `hookline worker` that the organisations with sends in flight share: three
    fifths of its jobs, the rest there at once for an organisation with none in flight, and for the
    jobs bouncing off a busy one (see `worker_share`). A worker's quick sends hold a slot only while
    they send, so an organisation alone seldom has more in flight."""
    return max(1, worker_jobs * 3 // 5)


class Jobs:
    """`requeue`, when given, queues a delivery again at once (the in-process queue): a job for a busy
    webhook then waits, off the queue, for one of that webhook's sends to end, instead of polling.

    Fairness: a webhook has at most `per_webhook` sends in flight in this process, and an organisation
    what the others leave of `organizations` slots, and never less than an equal part of them with
    every other organisation that has sends in flight here: alone, all of them; when several want
    more, an equal part each. A delivery over either share waits as it does for a busy webhook. As
    organisations come, one over its part takes no slot until it is under it again (within a request
    timeout), and the slots beyond `organizations` are there at once for an organisation that comes.
    With more organisations sending than slots, each has one (those beyond wait in the queue)."""

    def __init__(
        self,
        app: Hookline,
        send: Send,
        limiter: RateLimiter,
        per_webhook: int = PER_WEBHOOK,
        requeue: Callable[[UUID], None] | None = None,
        organizations: int | None = None,
    ) -> None:
        self.app = app
        self.send = send
        self.limiter = limiter
        self.per_webhook = per_webhook
        self.requeue = requeue
        self.organizations = organizations  # None: no organisation's share
        self._in_flight: dict[UUID, int] = {}  # per webhook
        self._org_in_flight: dict[UUID, int] = {}  # per organisation
        self._sending = 0  # sends in flight, all organisations'
        self._waiting: dict[UUID, dict[UUID, None]] = {}  # per webhook or organisation, in order
        self._parked: dict[UUID, UUID] = {}  # the waiting deliveries' webhook or organisation
        self._held: dict[UUID, deque[asyncio.Future[None]]] = {}  # per webhook or organisation
        self._failures: OrderedDict[UUID, int] = OrderedDict()  # jobs' runs failed by their own error
        self._fan_outs: Batcher[UUID, list[UUID]] = Batcher(self._fan_out_all)
        self._records: Batcher[tuple[Delivery, Attempt], None] = Batcher(self._record_all)
        # Preparing is a read: nothing is gained by waiting for more, and a delivery waits for it.
        self._prepares: Batcher[tuple[UUID, int | None], Prepared] = Batcher(self._prepare_all, max_wait=0)

    async def fan_out(self, event_id: UUID) -> list[UUID]:
        made = await self._bounded("fan_out", event_id, lambda: self._fan_outs.submit(event_id))
        return made or []

    async def deliver(self, delivery_id: UUID, due: int | None = None) -> float | None:
        return await self._bounded("deliver", delivery_id, lambda: self._deliver(delivery_id, due))

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

    async def _deliver(self, delivery_id: UUID, due: int | None) -> float | None:
        """Makes the delivery's next attempt; returns seconds to wait when it may not go yet.

        `due` (see `due_key`) is the attempt time the job was queued for, if it names one. When the
        read model knows the delivery's webhook and organisation, a busy one is seen before the
        (costly) preparation. A worker (no `requeue`) takes the slot only for the send: held while a
        batch is prepared, the slots of a quick target stood idle most of the time. In `serve` the
        slot is taken at once, as a delivery woken for a freed slot must take it (see `_slot_of`).
        A request that cannot be prepared becomes a failed attempt (see `_unmade`)."""
        slot = await self._slot_of(delivery_id)
        if slot is not None:
            if self._blocker(slot) is not None and not await self._slot_freed(slot, prepared=False):
                return self._wait_for_slot(slot, delivery_id)
            slot = self._take(slot) if self.requeue is not None else None
        try:
            try:
                prepared = await self._prepares.submit((delivery_id, due))
            except OUTAGES:
                raise
            except Exception as error:
                await self._unmade(delivery_id, error)
                return None
            if isinstance(prepared, NothingToSend):
                return None
            if isinstance(prepared, NotDue):  # (an early or repeated job)
                return max((prepared.at - self.app.clock()).total_seconds(), 0.0)
            if prepared.rate_limit_per_second is not None:
                wait = await self.limiter.acquire(prepared.webhook_id, prepared.rate_limit_per_second)
                if wait > 0:
                    return wait
            if slot is None:
                wanted = (prepared.webhook_id, prepared.delivery.organization_id)
                if self._blocker(wanted) is not None and not await self._slot_freed(wanted, prepared=True):
                    return self._wait_for_slot(wanted, delivery_id)
                slot = self._take(wanted)
            attempt = await self.send(prepared.request, prepared.delivery.next_attempt_number)
        finally:
            if slot is not None:
                self._give_back(slot)
        await self._records.submit((prepared.delivery, attempt))
        log.debug(
            "attempt recorded",
            delivery_id=str(delivery_id),
            attempt=attempt.number,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )
        return None

    async def _unmade(self, delivery_id: UUID, error: Exception) -> None:
        """Preparing the request raised an error of its own (one no rerun mends): recorded as the
        attempt's error, naming only its type (its message may hold what was being prepared), and
        logged once with the delivery's id."""
        message = f"the request could not be made: {type(error).__name__}"
        log.warning(
            "an attempt could not be made", delivery_id=str(delivery_id), error=message, exc_info=error
        )
        await asyncio.to_thread(self.app.record_unmade_attempt, delivery_id, message)

    async def _slot_of(self, delivery_id: UUID) -> Slot | None:
        """The delivery's webhook and organisation as the read model has them: from memory, or, when
        some share is taken or deliveries wait (it matters then), read; None when unknown.

        A delivery woken for a freed slot must take it (and give it back when it ends, which wakes
        the next), even when it turns out to have been sent meanwhile: left untaken, nothing else
        would wake the webhook's other waiting deliveries."""
        known = self.app.views.held(delivery_id)
        if known is None and (self._waiting or self._crowded()):
            known = (await asyncio.to_thread(self.app.views.states, [delivery_id])).get(delivery_id)
        return (known.webhook_id, known.organization_id) if isinstance(known, Delivery) else None

    def _crowded(self) -> bool:
        return any(n >= self.per_webhook for n in self._in_flight.values()) or any(
            self._org_full(o) for o in self._org_in_flight
        )

    def _org_room(self, organization_id: UUID) -> int:
        """How many more sends the organisation may start now (see the class's docstring)."""
        if self.organizations is None:
            return 1
        own = self._org_in_flight.get(organization_id, 0)
        busy = len(self._org_in_flight) + (own == 0)
        part = max(1, self.organizations // busy, self.organizations - (self._sending - own))
        return part - own

    def _org_full(self, organization_id: UUID) -> bool:
        return self._org_room(organization_id) <= 0

    def _blocker(self, slot: Slot) -> UUID | None:
        """What keeps a send from going now: its webhook or its organisation at its share; or None."""
        webhook_id, organization_id = slot
        if self._in_flight.get(webhook_id, 0) >= self.per_webhook:
            return webhook_id
        if self._org_full(organization_id):
            return organization_id
        return None

    def _take(self, slot: Slot) -> Slot:
        webhook_id, organization_id = slot
        self._in_flight[webhook_id] = self._in_flight.get(webhook_id, 0) + 1
        self._org_in_flight[organization_id] = self._org_in_flight.get(organization_id, 0) + 1
        self._sending += 1
        return slot

    def _give_back(self, slot: Slot) -> None:
        """Frees a slot for the webhook's longest-waiting delivery, and for its organisation's or,
        with none waiting, another organisation's that has room now (its part grew). An
        organisation's last send ending makes every other part bigger: each is woken for its room."""
        webhook_id, organization_id = slot
        _decrement(self._in_flight, webhook_id)
        self._wake(webhook_id)
        idle = not _decrement(self._org_in_flight, organization_id)
        self._sending -= 1
        if self._wake(organization_id) and not idle:
            return
        waiting = [o for o in dict.fromkeys((*self._waiting, *self._held)) if o in self._org_in_flight]
        for other in waiting:
            room, woken = self._org_room(other), 0
            while woken < (room if idle else min(room, 1)) and self._wake(other):
                woken += 1
            if woken and not idle:
                return

    def _wake(self, key: UUID) -> bool:
        """Wakes one job held for a slot of the webhook or organisation (a worker), or queues again
        the delivery that has waited longest for one (`serve`); whether there was one."""
        held = self._held.get(key)
        while held:
            job = held.popleft()
            if not job.done():
                job.set_result(None)
                return True
        waiting = self._waiting.get(key)
        if waiting and self.requeue is not None:
            delivery_id = next(iter(waiting))
            self._unpark(delivery_id)
            self.requeue(delivery_id)
            return True
        return False

    def _unpark(self, delivery_id: UUID) -> UUID | None:
        """Takes a delivery off the waiting list it is on (it runs now, however it was queued);
        returns the webhook or organisation it waited for, if it was waiting."""
        key = self._parked.pop(delivery_id, None)
        if key is not None:
            waiting = self._waiting[key]
            del waiting[delivery_id]
            if not waiting:
                del self._waiting[key]
        return key

    async def _slot_freed(self, slot: Slot, *, prepared: bool) -> bool:
        """Without `requeue` (arq), holds the job up to SLOT_HOLD for a send to end and leave a slot:
        to a quick target one soon does, and putting the job back in Redis to run again costs more
        than the delivery. Not yet prepared, a job held up by its organisation's part (rather than its
        webhook's) goes back at once: held, the jobs of an organisation whose targets hang kept the
        other organisations' jobs from the worker's room. Whether a slot is free now."""
        if self.requeue is not None:
            return self._blocker(slot) is None
        loop = asyncio.get_running_loop()
        until = loop.time() + SLOT_HOLD
        while (key := self._blocker(slot)) is not None and (left := until - loop.time()) > 0:
            if key != slot[0] and not prepared:
                break
            job = loop.create_future()
            held = self._held.setdefault(key, deque())
            held.append(job)
            try:
                await asyncio.wait_for(job, left)
            except TimeoutError:
                held.remove(job)  # not woken (a woken one is off the deque)
            if not held:
                self._held.pop(key, None)
        return self._blocker(slot) is None

    def _wait_for_slot(self, slot: Slot, delivery_id: UUID) -> float | None:
        if self.requeue is None:
            return Busy(BUSY_WAIT)
        key = self._blocker(slot)
        if key is None:
            return 0.0  # a slot freed meanwhile (the check awaited a read): go again now
        if self._parked.get(delivery_id) != key:
            self._unpark(delivery_id)  # (a sweep queued it again while it waited for another)
        self._waiting.setdefault(key, {})[delivery_id] = None
        self._parked[delivery_id] = key
        return None  # queued again when a slot frees (`_give_back`); lost only with the process

    def _fan_out_all(self, event_ids: Sequence[UUID]) -> Sequence[list[UUID] | Exception]:
        return all_or_each(self.app.fan_out_many, event_ids)

    def _prepare_all(self, jobs: Sequence[tuple[UUID, int | None]]) -> Sequence[Prepared | Exception]:
        return all_or_each(self.app.prepare_deliveries, jobs)

    def _record_all(self, attempts: Sequence[tuple[Delivery, Attempt]]) -> list[None]:
        self.app.record_attempts(attempts)
        return [None] * len(attempts)


def _decrement(counts: dict[UUID, int], key: UUID) -> int:
    left = counts.pop(key) - 1
    if left:
        counts[key] = left
    return left
