"""A process's delivery slots: how many sends go at once to one webhook and for one organisation, and
what a delivery does while its share is in flight.

A target that hangs holds at most its webhook's share of the slots, and an organisation whose targets
hang at most its part of them, so the other webhooks' and organisations' deliveries keep flowing. How
a delivery waits for a slot depends on its queue, so the composition root picks one of two:
`ParkingSlots` in `serve` (its in-process queue takes the delivery up again when a slot frees) and
`HoldingSlots` in a `hookline worker` (a job put back in Redis costs more than a short wait).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple
from uuid import UUID

from workers.jobtypes import PARKED, Busy, Parked

PER_WEBHOOK = 32  # sends in flight to one webhook at once, per process, at most
BUSY_WAIT = 0.5  # a worker's job for a busy webhook runs again this much later (see `Busy`)
SLOT_HOLD = 0.05  # ... after holding its job slot this long for one of the webhook's sends to end


class Slot(NamedTuple):
    """What a send counts against: its webhook's share and its organisation's part."""

    webhook_id: UUID
    organization_id: UUID


Waiting = Parked | Busy  # what a job answers while its delivery waits for a slot


def embedded_share(delivery_concurrency: int) -> int:
    """One webhook's slots in `serve`'s own queue: at most half of them (PER_WEBHOOK of the default 64),
    so a hanging target leaves the other half to the other webhooks."""
    return min(PER_WEBHOOK, max(1, delivery_concurrency // 2))


def embedded_reserve(delivery_concurrency: int) -> int:
    """Consumers `serve`'s queue runs beyond HOOKLINE_DELIVERY_CONCURRENCY, which is what the
    organisations with sends in flight share: a quarter more, there at once for an organisation with
    none in flight while the others' targets hang. Kept apart rather than taken from the concurrency,
    so that an organisation alone still has all of it."""
    return max(1, delivery_concurrency // 4)


def worker_share(worker_jobs: int) -> int:
    """One webhook's slots in a `hookline worker` running `worker_jobs` jobs: at most 40 % of them, so
    the jobs a hanging target holds, and those bouncing off it, leave room for the others."""
    return min(PER_WEBHOOK, max(1, worker_jobs * 2 // 5))


def worker_organizations(worker_jobs: int) -> int:
    """The slots of a `hookline worker` that the organisations with sends in flight share: three
    fifths of its jobs, the rest there at once for an organisation with none in flight, and for the
    jobs bouncing off a busy one (see `worker_share`). A worker's quick sends hold a slot only while
    they send, so an organisation alone seldom has more in flight."""
    return max(1, worker_jobs * 3 // 5)


class WebhookSlots(ABC):
    """The sends in flight in this process, per webhook and per organisation, and the deliveries that
    wait for one of them to end.

    A webhook has at most `per_webhook` sends in flight, and an organisation what the others leave of
    `organizations` slots, and never less than an equal part of them with every other organisation
    that has sends in flight here: alone, all of them; when several want more, an equal part each. As
    organisations come, one over its part takes no slot until it is under it again (within a request
    timeout), and the slots beyond `organizations` are there at once for an organisation that comes.
    With more organisations sending than slots, each has one (those beyond wait in the queue)."""

    def __init__(self, per_webhook: int = PER_WEBHOOK, organizations: int | None = None) -> None:
        self.per_webhook = per_webhook
        self.organizations = organizations  # None: no organisation's part
        self._webhooks: dict[UUID, int] = {}  # sends in flight per webhook
        self._organizations: dict[UUID, int] = {}  # ... per organisation
        self._sending = 0  # ... in all

    @abstractmethod
    async def before_preparing(self, slot: Slot, delivery_id: UUID) -> Slot | Waiting | None:
        """For a delivery whose slot the read model knows before its (costly) preparation: the slot,
        taken (see `give_back`); what its job answers while it waits; or None, to be taken once the
        delivery is prepared (`before_sending`)."""

    async def before_sending(self, slot: Slot, delivery_id: UUID) -> Slot | Waiting:
        """The slot, taken (see `give_back`), or what the delivery's job answers while it waits."""
        if self._blocker(slot) is not None:
            waiting = await self._wait(slot, delivery_id, prepared=True)
            if waiting is not None:
                return waiting
        return self._take(slot)

    def contended(self) -> bool:
        """Whether a delivery's slot matters before it is prepared: some share is taken."""
        return any(n >= self.per_webhook for n in self._webhooks.values()) or any(
            self._organization_room(o) <= 0 for o in self._organizations
        )

    def give_back(self, slot: Slot) -> None:
        """Frees a slot for the webhook's longest-waiting delivery, and for its organisation's or,
        with none waiting, another organisation's that has room now (its part grew). An
        organisation's last send ending makes every other part bigger: each is woken for its room."""
        webhook_id, organization_id = slot
        _decrement(self._webhooks, webhook_id)
        self._wake(webhook_id)
        idle = not _decrement(self._organizations, organization_id)
        self._sending -= 1
        if self._wake(organization_id) and not idle:
            return
        self._wake_organizations(idle)

    def _wake_organizations(self, idle: bool) -> None:
        """Wakes the first waiting organisation with room for one more send; or, `idle` (one has no
        sends in flight any more, every other part grew), each as many as it has room for."""
        waiting = [key for key in self._waiting_for() if key in self._organizations]
        for other in waiting:
            room, woken = self._organization_room(other), 0
            while woken < (room if idle else min(room, 1)) and self._wake(other):
                woken += 1
            if woken and not idle:
                return

    @abstractmethod
    async def _wait(self, slot: Slot, delivery_id: UUID, *, prepared: bool) -> Waiting | None:
        """Called while the slot is taken: None once it is free, else what the job answers."""

    @abstractmethod
    def _wake(self, key: UUID) -> bool:
        """Lets the delivery that has waited longest for the webhook or organisation go; whether
        there was one."""

    @abstractmethod
    def _waiting_for(self) -> Iterable[UUID]:
        """The webhooks and organisations that deliveries wait for, the longest-waited first."""

    def _organization_room(self, organization_id: UUID) -> int:
        """How many more sends the organisation may start now (see the class's docstring)."""
        if self.organizations is None:
            return 1
        own = self._organizations.get(organization_id, 0)
        busy = len(self._organizations) + (own == 0)
        part = max(1, self.organizations // busy, self.organizations - (self._sending - own))
        return part - own

    def _blocker(self, slot: Slot) -> UUID | None:
        """What keeps a send from going now: its webhook or its organisation at its share; or None."""
        webhook_id, organization_id = slot
        if self._webhooks.get(webhook_id, 0) >= self.per_webhook:
            return webhook_id
        if self._organization_room(organization_id) <= 0:
            return organization_id
        return None

    def _take(self, slot: Slot) -> Slot:
        webhook_id, organization_id = slot
        self._webhooks[webhook_id] = self._webhooks.get(webhook_id, 0) + 1
        self._organizations[organization_id] = self._organizations.get(organization_id, 0) + 1
        self._sending += 1
        return slot


class ParkingSlots(WebhookSlots):
    """`serve`'s: a delivery that finds its share taken leaves the queue (`Parked`), and the first to
    wait is queued again by `resume`, ahead of later jobs, when a send ends; lost only with the process
    (the store still has it).

    A delivery takes its slot before it is prepared: one woken for a freed slot must take it (and give
    it back when it ends, which wakes the next), even when it turns out to have been sent meanwhile
    (a sweep queued it again): left untaken, nothing else would wake the others waiting."""

    def __init__(
        self,
        resume: Callable[[UUID], None],
        per_webhook: int = PER_WEBHOOK,
        organizations: int | None = None,
    ) -> None:
        super().__init__(per_webhook, organizations)
        self._resume = resume
        self._waiting: dict[UUID, dict[UUID, None]] = {}  # per webhook or organisation, in order
        self._parked: dict[UUID, UUID] = {}  # the waiting deliveries' webhook or organisation

    async def before_preparing(self, slot: Slot, delivery_id: UUID) -> Slot | Waiting:
        return await self.before_sending(slot, delivery_id)

    def contended(self) -> bool:
        """Some share is taken, or deliveries wait: one woken for a slot must find it (see the class)."""
        return bool(self._waiting) or super().contended()

    async def _wait(self, slot: Slot, delivery_id: UUID, *, prepared: bool) -> Parked | None:
        key = self._blocker(slot)
        if key is None:
            return None
        if self._parked.get(delivery_id) != key:
            self._unpark(delivery_id)  # (a sweep queued it again while it waited for another)
        self._waiting.setdefault(key, {})[delivery_id] = None
        self._parked[delivery_id] = key
        return PARKED

    def _wake(self, key: UUID) -> bool:
        waiting = self._waiting.get(key)
        if not waiting:
            return False
        delivery_id = next(iter(waiting))
        self._unpark(delivery_id)
        self._resume(delivery_id)
        return True

    def _waiting_for(self) -> Iterable[UUID]:
        return list(self._waiting)

    def _unpark(self, delivery_id: UUID) -> None:
        """Takes a delivery off the waiting list it is on, if any (it runs now, however it was queued)."""
        key = self._parked.pop(delivery_id, None)
        if key is not None:
            waiting = self._waiting[key]
            del waiting[delivery_id]
            if not waiting:
                del self._waiting[key]


class HoldingSlots(WebhookSlots):
    """A worker's: a job whose share is taken holds its own job slot up to SLOT_HOLD for a send to end
    (to a quick target one soon does, and a job put back in Redis costs more than its delivery), else
    goes back to Redis (`Busy`).

    A delivery takes its slot only to send: taken while a batch is prepared, a quick target's slots
    would stand idle most of the time."""

    def __init__(self, per_webhook: int = PER_WEBHOOK, organizations: int | None = None) -> None:
        super().__init__(per_webhook, organizations)
        self._held: dict[UUID, deque[asyncio.Future[bool]]] = {}  # per webhook or organisation; woken?

    async def before_preparing(self, slot: Slot, delivery_id: UUID) -> Waiting | None:
        if self._blocker(slot) is None:
            return None
        return await self._wait(slot, delivery_id, prepared=False)

    async def _wait(self, slot: Slot, delivery_id: UUID, *, prepared: bool) -> Busy | None:
        """Not yet prepared, a job held up by its organisation's part (rather than its webhook's)
        goes back at once: held, the jobs of an organisation whose targets hang would keep the other
        organisations' jobs from the worker's room."""
        loop = asyncio.get_running_loop()
        until = loop.time() + SLOT_HOLD
        while (key := self._blocker(slot)) is not None and (left := until - loop.time()) > 0:
            if key != slot.webhook_id and not prepared:
                break
            await self._hold(slot, key, left)
        return None if self._blocker(slot) is None else Busy(BUSY_WAIT)

    async def _hold(self, slot: Slot, key: UUID, seconds: float) -> None:
        """Waits up to `seconds` for `_wake(key)`. A wake or the hold running out takes the job off
        the deque in the same step as it ends the wait, so a wake never finds it there once it no
        longer waits. A job cancelled (arq's timeout, the worker stopping) just after it was woken
        hands the wake on: it would have taken the freed slot, and no other wake comes for it."""
        loop = asyncio.get_running_loop()
        job: asyncio.Future[bool] = loop.create_future()
        self._held.setdefault(key, deque()).append(job)
        timer = loop.call_later(seconds, self._let_go, key, job)
        try:
            await job
        except asyncio.CancelledError:
            if job.cancelled():
                self._let_go(key, job)
            elif job.result() and not self._wake(key) and key == slot.organization_id:
                self._wake_organizations(idle=False)
            raise
        finally:
            timer.cancel()

    def _let_go(self, key: UUID, job: asyncio.Future[bool]) -> None:
        """Takes a job that stops waiting unwoken off its deque (unless a wake passing by has)."""
        held = self._held.get(key)
        if held is not None and job in held:
            held.remove(job)
            if not held:
                del self._held[key]
        if not job.done():
            job.set_result(False)

    def _wake(self, key: UUID) -> bool:
        held = self._held.get(key)
        woken = False
        while held and not woken:
            job = held.popleft()
            if not job.done():  # (a cancelled one is there until its job runs again)
                job.set_result(True)
                woken = True
        if key in self._held and not held:
            del self._held[key]
        return woken

    def _waiting_for(self) -> Iterable[UUID]:
        return list(self._held)


def _decrement(counts: dict[UUID, int], key: UUID) -> int:
    left = counts.pop(key) - 1
    if left:
        counts[key] = left
    return left
