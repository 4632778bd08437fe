"""The embedded queue: jobs run as asyncio tasks inside `serve`, deferred ones wait on a timer heap.

It carries ids only, like the arq queue. A job is held once: submitting it again while it waits keeps
the earlier of the two times, and submitting it while it runs queues one more run after it (the store
decides what a rerun does, so collapsing repeats loses nothing).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from uuid import UUID

import structlog

from workers.jobtypes import Busy, Deliver, FanOut, Job, Later, Outcome

log = structlog.get_logger("hookline.queue")

MAX_BACKOFF = 60.0
# A job failing this many times in a row is dropped: what the store still says is due, a sweep queues
# again (a job's own error does not get this far: `Jobs` gives such a job up after a few runs).
MAX_FAILURES = 10
Run = Callable[[Job], Awaitable[Outcome]]


class InProcessQueue:
    def __init__(self, *, concurrency: int = 64) -> None:
        self.concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        # Deliver jobs go before fan-out jobs: a burst of events then flows through to its targets
        # as it is fanned out, instead of every event being fanned out before anything is sent.
        self._ready: asyncio.PriorityQueue[tuple[int, int, Job]] = asyncio.PriorityQueue()
        self._heap: list[tuple[float, int, Job]] = []
        self._due: dict[Job, float] = {}  # waiting jobs (ready or on the heap) and their time
        self._running: set[Job] = set()
        self._after_run: dict[Job, float] = {}
        self._timer_wake = asyncio.Event()
        self._sequence = itertools.count()
        self._closing = False
        self._failures: dict[Job, int] = {}
        self._busy: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._incoming: list[tuple[Job, float]] = []

    # Thread-safe: the log follower calls these from its thread.
    def fan_out(self, event_id: UUID, trace_parent: str | None = None) -> None:
        self._submit(FanOut(event_id, trace_parent), None)

    def deliver(self, delivery_id: UUID, at: datetime | None = None, owed_by: UUID | None = None) -> None:
        """(`owed_by` is not needed here: the fan-out that owes it ran in this process.)"""
        self._submit(Deliver(delivery_id), at)

    def resume(self, delivery_id: UUID) -> None:
        """Queues a delivery that waited for a slot to run next, before the jobs queued meanwhile
        (from the loop's thread only): it takes the slot that just freed, instead of a later job
        taking it and having to wait in turn."""
        self._put(Deliver(delivery_id), 0.0, first=True)

    def _submit(self, job: Job, at: datetime | None) -> None:
        """Gathers submissions until the loop takes them: one wake-up of the loop for a whole batch
        of them (a sweep of the store may submit thousands), not one each."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the queue is not running")
        delay = (at - datetime.now(UTC)).total_seconds() if at else 0.0
        with self._lock:
            self._incoming.append((job, delay))
            first = len(self._incoming) == 1
        if first:
            loop.call_soon_threadsafe(self._take_incoming)

    def _take_incoming(self) -> None:
        with self._lock:
            incoming, self._incoming = self._incoming, []
        for job, delay in incoming:
            self._put(job, delay)

    @property
    def depth(self) -> int:
        return len(self._due)

    @property
    def backlog(self) -> int:
        """Jobs due now that wait for a free consumer (a job queued twice may count twice)."""
        return self._ready.qsize()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _put(self, job: Job, delay: float, first: bool = False) -> None:
        when = self._now() + max(delay, 0.0)
        if job in self._running:
            self._after_run[job] = min(self._after_run.get(job, when), when)
            return
        if job in self._due and self._due[job] <= when:
            return
        self._due[job] = when
        if delay <= 0:
            self._make_ready(job, first)
        else:
            heapq.heappush(self._heap, (when, next(self._sequence), job))
            self._timer_wake.set()

    def _make_ready(self, job: Job, first: bool = False) -> None:
        priority = -1 if first else 0 if isinstance(job, Deliver) else 1
        self._ready.put_nowait((priority, next(self._sequence), job))

    async def _consume(self, run: Run, ticked: Callable[[], None], every: float) -> None:
        while not self._closing:
            ticked()
            try:
                async with asyncio.timeout(every):  # idle, it still ticks
                    _, _, job = await self._ready.get()
            except TimeoutError:
                continue
            if job not in self._due or self._due[job] > self._now():
                continue  # superseded by a later submission that is still waiting on the heap
            del self._due[job]
            self._running.add(job)
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            again: float | None = None
            try:
                outcome = await run(job)
                if isinstance(outcome, Later | Busy):
                    again = outcome.seconds
                self._failures.pop(job, None)
            except Exception:
                # The store may be failing (full, read-only): try again later, backing off.
                failures = self._failures[job] = self._failures.get(job, 0) + 1
                if failures < MAX_FAILURES:
                    again = min(2.0**failures, MAX_BACKOFF)
                    log.exception("job failed; trying again", job=job, in_seconds=again)
                else:
                    del self._failures[job]
                    log.exception("job failed; dropped", job=job, failures=failures)
            finally:
                self._running.discard(job)
                self._busy.discard(task)
            rerun = self._after_run.pop(job, None)
            if again is not None:
                self._put(job, again)
            if rerun is not None:
                self._put(job, rerun - self._now())

    async def _release_timers(self) -> None:
        while True:
            now = self._now()
            while self._heap and self._heap[0][0] <= now:
                when, _, job = heapq.heappop(self._heap)
                if self._due.get(job) == when:  # else stale: the job was moved earlier or ran
                    self._make_ready(job)
            timeout = self._heap[0][0] - now if self._heap else None
            self._timer_wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._timer_wake.wait(), timeout)

    @asynccontextmanager
    async def running(
        self,
        run: Run,
        drain_seconds: float = 10.0,
        ticked: Callable[[], None] = lambda: None,
        tick_every: float = 1.0,
    ) -> AsyncIterator[InProcessQueue]:
        """Runs the queue's jobs with `run`; on exit, sends in flight get `drain_seconds` to finish
        (what does not is taken up again from the store at the next start).

        Each consumer ticks `ticked` once a turn: as it takes up a job after ending one, and every
        `tick_every` seconds while it waits for one. None ticking means every consumer hangs in a
        job (or died): give `tick_every` the longest a job may hold its consumer."""
        self._loop = asyncio.get_running_loop()
        consumers = [
            asyncio.create_task(self._consume(run, ticked, tick_every)) for _ in range(self.concurrency)
        ]
        timers = asyncio.create_task(self._release_timers())
        try:
            yield self
        finally:
            timers.cancel()
            self._closing = True
            for task in consumers:
                if task not in self._busy:
                    task.cancel()
            if self._busy:
                await asyncio.wait(set(self._busy), timeout=drain_seconds)
            for task in [*consumers, timers]:
                task.cancel()
            await asyncio.gather(*consumers, timers, return_exceptions=True)
            self._loop = None
