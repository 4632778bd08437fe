"""A worker's slots (`HoldingSlots`) when a job waiting for one stops waiting at the moment a send ends:
its hold running out, or its job cancelled (arq's timeout, the worker stopping) just after it was woken.

The real slots class on a real event loop; the moments are met exactly, not by sleeping: from the
waiting future's own done callback (which runs before the waiting job resumes), or in the same step
as the send's end.
"""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest

from workers import slots as slots_module
from workers.jobtypes import Busy
from workers.slots import BUSY_WAIT, HoldingSlots, Slot, Waiting

SLOT = Slot(uuid4(), uuid4())


async def taken(slots: HoldingSlots) -> Slot:
    """`SLOT`, taken: with one slot per webhook, the next job for it waits."""
    slot = await slots.before_sending(SLOT, uuid4())
    assert isinstance(slot, Slot)
    return slot


async def waiting(slots: HoldingSlots) -> asyncio.Task[Slot | Waiting]:
    """A job that wants `SLOT` and, after one step of the loop, waits for it."""
    before = len(held(slots))
    job = asyncio.create_task(slots.before_sending(SLOT, uuid4()))
    await asyncio.sleep(0)
    assert len(held(slots)) == before + 1
    return job


def held(slots: HoldingSlots) -> list[asyncio.Future[bool]]:
    return list(slots._held.get(SLOT.webhook_id, ()))


async def test_a_send_ending_as_a_hold_runs_out_leaves_nothing_behind() -> None:
    """The hold running out and a send ending at the same moment: the job goes back to the queue or
    takes the freed slot, and nothing is left behind (it raised `ValueError: <Future cancelled> is not
    in deque`, and its delivery waited for the sweep)."""
    slots = HoldingSlots(per_webhook=1)
    slot = await taken(slots)
    job = await waiting(slots)
    (future,) = held(slots)
    future.add_done_callback(lambda _: slots.give_back(slot))  # ... when its hold ends, however

    outcome = await asyncio.wait_for(job, 5)
    assert outcome in (SLOT, Busy(BUSY_WAIT))
    assert slots._webhooks == ({SLOT.webhook_id: 1} if outcome == SLOT else {})
    assert slots._held == {}


async def test_a_job_cancelled_just_after_it_was_woken_hands_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first waiting job is woken for the freed slot and cancelled before it takes it: the next
    waiting job is woken at once (it waited out its whole hold, while the first job, its cancel
    swallowed by `asyncio.wait_for`, took the slot anyway)."""
    monkeypatch.setattr(slots_module, "SLOT_HOLD", 30.0)  # a hand-on missed would show as a long wait
    slots = HoldingSlots(per_webhook=1)
    slot = await taken(slots)
    first = await waiting(slots)
    second = await waiting(slots)

    slots.give_back(slot)
    first.cancel()  # woken, then cancelled before it runs again

    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 5) == SLOT
    assert slots._webhooks == {SLOT.webhook_id: 1}
    assert slots._held == {}


async def test_a_job_cancelled_while_it_waits_leaves_no_trace() -> None:
    """A waiting job cancelled before any send ends: off the waiting list; the next send ending frees
    the slot for whoever comes."""
    slots = HoldingSlots(per_webhook=1)
    slot = await taken(slots)
    job = await waiting(slots)

    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert slots._held == {}
    slots.give_back(slot)
    assert slots._webhooks == {}
    assert await slots.before_sending(SLOT, uuid4()) == SLOT


class CancellingAsHoldsRunOut(HoldingSlots):
    """The real slots, cancelling `first` in the same step as a hold runs out (before its job runs)."""

    first: asyncio.Task[Slot | Waiting] | None = None

    def _let_go(self, key: UUID, job: asyncio.Future[bool]) -> None:
        super()._let_go(key, job)
        if self.first is not None:
            self.first.cancel()


async def test_a_job_cancelled_as_its_hold_runs_out_wakes_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job whose hold ran out, cancelled before it runs again, was never woken: it hands nothing
    on, and the job behind it keeps its place."""
    slots = CancellingAsHoldsRunOut(per_webhook=1)
    slot = await taken(slots)
    monkeypatch.setattr(slots_module, "SLOT_HOLD", 0.01)
    slots.first = await waiting(slots)
    monkeypatch.setattr(slots_module, "SLOT_HOLD", 30.0)
    second = await waiting(slots)
    _, behind = held(slots)

    with pytest.raises(asyncio.CancelledError):
        await slots.first
    assert held(slots) == [behind]
    assert not behind.done()
    slots.first = None
    slots.give_back(slot)
    assert await asyncio.wait_for(second, 5) == SLOT
