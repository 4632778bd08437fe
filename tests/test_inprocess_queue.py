"""The embedded queue on its own: which job runs first, and submissions from other threads."""

from __future__ import annotations

import asyncio
import threading
from uuid import UUID, uuid4

from hookline.runtime import Liveness
from workers.inprocess import InProcessQueue
from workers.jobtypes import DONE, Deliver, FanOut, Job, Outcome


def test_deliver_jobs_run_before_fan_out_jobs_that_were_queued_earlier() -> None:
    """A burst is fanned out while its deliveries go: a deliver job does not wait behind every
    fan-out job already queued. Jobs of one kind keep their order."""
    ran: list[Job] = []

    async def scenario() -> None:
        release, done = asyncio.Event(), asyncio.Event()

        async def handle(job: Job) -> Outcome:
            if not ran:
                await release.wait()  # the single consumer is busy while the rest is queued
            ran.append(job)
            if len(ran) == 6:
                done.set()
            return DONE

        queue = InProcessQueue(concurrency=1)
        first, events, deliveries = uuid4(), [uuid4() for _ in range(3)], [uuid4() for _ in range(2)]
        async with queue.running(handle):
            queue.fan_out(first)
            await asyncio.sleep(0.05)
            for event_id in events:
                queue.fan_out(event_id)
            for delivery_id in deliveries:
                queue.deliver(delivery_id)
            await asyncio.sleep(0.05)
            assert queue.backlog == 5  # waiting for the busy consumer
            release.set()
            await asyncio.wait_for(done.wait(), 5)
        assert ran == [
            FanOut(first),
            *(Deliver(d) for d in deliveries),
            *(FanOut(e) for e in events),
        ]

    asyncio.run(scenario())


def test_thousands_of_submissions_from_another_thread_each_run_once() -> None:
    """The log follower and the sweeper submit from their threads, many at a time, and repeat
    themselves: every job runs, and a job submitted again while it waits runs once."""
    ran: list[UUID] = []

    async def scenario() -> None:
        release, done = asyncio.Event(), asyncio.Event()

        async def handle(job: Job) -> Outcome:
            await release.wait()  # nothing finishes before every submission is in
            assert isinstance(job, Deliver)
            ran.append(job.delivery_id)
            if len(ran) == len(ids):
                done.set()
            return DONE

        queue = InProcessQueue(concurrency=8)
        ids = [uuid4() for _ in range(5000)]
        async with queue.running(handle):

            def submit() -> None:  # as the log follower does, from its own thread
                for delivery_id in ids + ids[1000:1100]:
                    queue.deliver(delivery_id)

            submitting = threading.Thread(target=submit)
            submitting.start()
            await asyncio.to_thread(submitting.join)
            await asyncio.sleep(0.05)
            assert queue.depth == len(ids) - 8  # the repeats collapsed; 8 jobs are running
            release.set()
            await asyncio.wait_for(done.wait(), 10)
            await asyncio.sleep(0.1)  # a job run twice would run now
        assert sorted(ran) == sorted(ids)

    asyncio.run(scenario())


def test_idle_consumers_tick_and_consumers_all_hung_in_their_jobs_are_stalled() -> None:
    """`serve`'s /readyz names the `consumer` loop when no consumer goes round: an idle consumer
    waiting for a job still ticks, one held by a job that never ends does not."""
    liveness = Liveness()  # (a loop's interval is held to a second: stalled after 3 s)

    async def scenario() -> None:
        started = asyncio.Event()

        async def hang(job: Job) -> Outcome:
            started.set()
            await asyncio.Event().wait()
            return DONE

        queue = InProcessQueue(concurrency=2)
        async with queue.running(hang, drain_seconds=0, ticked=liveness.watch("consumer", 1), tick_every=0.2):
            await asyncio.sleep(3.5)
            assert liveness.stalled() == []  # idle all along
            queue.deliver(uuid4())
            await asyncio.wait_for(started.wait(), 5)
            await asyncio.sleep(3.5)
            assert liveness.stalled() == []  # the other consumer, idle, still ticks
            queue.deliver(uuid4())
            await asyncio.sleep(3.5)
            assert [problem.split()[0] for problem in liveness.stalled()] == ["consumer"]

    asyncio.run(scenario())


def test_consumers_that_died_are_stalled() -> None:
    liveness = Liveness()

    async def scenario() -> None:
        async def die(job: Job) -> Outcome:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # nothing in the consumer catches it: it ends
            await asyncio.sleep(1)
            return DONE

        queue = InProcessQueue(concurrency=1)
        async with queue.running(die, ticked=liveness.watch("consumer", 1), tick_every=0.2):
            queue.deliver(uuid4())
            await asyncio.sleep(3.5)
            assert liveness.stalled()[0].startswith("consumer has not ticked for")

    asyncio.run(scenario())
