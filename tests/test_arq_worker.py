"""`ClaimingWorker`, arq's worker with one round trip to claim jobs and one to finish those that end
together: two of them on one real Redis queue run every job exactly once, never more at once than
their `max_jobs`; a job deferred or claimed elsewhere meanwhile is not claimed; finished jobs leave
what arq leaves. `hookline worker` runs it on uvloop."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import uvloop
from arq import Retry
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name, in_progress_key_prefix
from arq.utils import timestamp_ms, to_unix_ms
from arq.worker import func
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from hookline.runtime import supervise_worker
from tests.support import redis_database
from workers.arq_jobs import put_back
from workers.arq_worker import FINISH, ROOM_WAIT, ClaimingWorker
from workers.jobtypes import Busy, Later

JOBS = 300
MAX_JOBS = 7


def test_two_workers_run_each_job_once_within_their_room() -> None:
    runs: list[int] = []
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    ran_by: Counter[str] = Counter()

    async def job(ctx: dict[str, Any], n: int) -> None:
        name = ctx["name"]
        running[name] += 1
        peak[name] = max(peak[name], running[name])
        await asyncio.sleep(0.002 * (n % 5))
        runs.append(n)
        ran_by[name] += 1
        running[name] -= 1

    async def scenario(url: str) -> None:
        redis = ArqRedis.from_url(url)
        try:
            for n in range(JOBS):
                await redis.enqueue_job("job", n, _job_id=f"job:{n}")
        finally:
            await redis.aclose()
        await asyncio.gather(*(worker(url, name).main() for name in ("a", "b")))

    def worker(url: str, name: str) -> ClaimingWorker:
        async def startup(ctx: dict[str, Any]) -> None:
            ctx["name"] = name

        return ClaimingWorker(
            functions=[func(job, name="job", keep_result=0)],
            redis_settings=RedisSettings.from_dsn(url),
            on_startup=startup,
            max_jobs=MAX_JOBS,
            burst=True,
            poll_delay=0.005,
            handle_signals=False,
        )

    with redis_database() as url:
        asyncio.run(scenario(url))
    assert sorted(runs) == list(range(JOBS))  # each once
    assert max(peak.values()) <= MAX_JOBS
    assert min(ran_by["a"], ran_by["b"]) > 0, ran_by


def test_a_job_not_due_or_running_elsewhere_is_not_claimed() -> None:
    """Between a poll's read and its claim, a job may be deferred again or claimed by another worker:
    the claim looks again."""
    ran: list[str] = []

    async def job(ctx: dict[str, Any]) -> None:
        ran.append(ctx["job_id"])

    async def scenario(url: str) -> tuple[list[str], list[str]]:
        redis = ArqRedis.from_url(url)
        worker = ClaimingWorker(
            functions=[func(job, name="job", keep_result=0)],
            redis_pool=redis,
            handle_signals=False,
        )
        try:
            for name in ("due", "later", "elsewhere"):
                await redis.enqueue_job("job", _job_id=name)
            await redis.zadd(default_queue_name, {"later": timestamp_ms() + 60_000})
            await redis.psetex(in_progress_key_prefix + "elsewhere", 60_000, b"1")
            await worker.start_jobs([b"later", b"elsewhere", b"due"])
            await asyncio.gather(*worker.tasks.values())
            return ran, sorted(worker.tasks)
        finally:
            await redis.aclose()

    with redis_database() as url:
        ran_jobs, started = asyncio.run(scenario(url))
    assert ran_jobs == ["due"]
    assert started == ["due"]


def test_a_job_put_back_for_a_busy_webhook_keeps_its_place_before_later_jobs() -> None:
    """workers.arq_jobs.put_back: put back `wait` after it was first queued, not `wait` from now (which
    is behind every job queued until then); a job that stays busy moves back further each time."""
    ran: list[str] = []
    tries: dict[str, int] = {}

    async def job(ctx: dict[str, Any], name: str, busy_tries: int) -> None:
        tries[name] = ctx["job_try"]
        ran.append(name)
        if ctx["job_try"] <= busy_tries:
            raise put_back(ctx, Busy(0.2))

    async def scenario(url: str) -> None:
        redis = ArqRedis.from_url(url)
        try:
            await redis.enqueue_job("job", "first", 1, _job_id="first")
            await asyncio.sleep(0.4)  # the next ones are queued after the first's place (+ 0.2 s)
            for n in range(10):
                await redis.enqueue_job("job", f"later-{n}", 0, _job_id=f"later-{n}")
        finally:
            await redis.aclose()
        worker = ClaimingWorker(
            functions=[func(job, name="job", keep_result=0, max_tries=10)],
            redis_settings=RedisSettings.from_dsn(url),
            max_jobs=1,
            burst=True,
            poll_delay=0.005,
            handle_signals=False,
        )
        await worker.main()

    with redis_database() as url:
        asyncio.run(scenario(url))
    assert ran[:2] == ["first", "first"]  # put back, it ran again before the jobs queued after it
    assert tries["first"] == 2
    assert sorted(ran[2:]) == [f"later-{n}" for n in range(10)]


def test_a_busy_job_moves_back_further_each_time_and_never_beyond_its_wait() -> None:
    queued = datetime.now(UTC) - timedelta(seconds=10)
    now = timestamp_ms()

    def deferred_ms(job_try: int, wait: float) -> int:
        defer = put_back({"enqueue_time": queued, "job_try": job_try}, Busy(wait)).defer_score
        assert defer is not None
        return defer

    assert abs(deferred_ms(1, 0.5) - (to_unix_ms(queued) + 500 - now)) < 100  # 9.5 s in the past
    assert abs(deferred_ms(3, 0.5) - (to_unix_ms(queued) + 2_000 - now)) < 100  # then 8 s
    assert deferred_ms(6, 0.5) == 500  # 16 s after it was queued: no later than 0.5 s from now
    assert deferred_ms(100_000, 0.5) == 500
    assert put_back({}, Later(0.5)).defer_score == 500  # a rate limit's or a retry's wait is a wait


def test_the_worker_runs_on_uvloop_on_a_new_loop_each_time_redis_goes_away() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        loops.append(asyncio.get_event_loop())
        if len(loops) == 1:
            raise RedisError("connection lost")

    supervise_worker(run, backoff=0)
    assert len(loops) == 2
    assert loops[0] is not loops[1]
    assert all(isinstance(loop, uvloop.Loop) for loop in loops)


def test_jobs_ending_together_are_finished_together_and_leave_what_arq_leaves() -> None:
    """Finished (done or failed) jobs leave no key and are out of the queue; a job put back keeps its
    job and retry keys, is no longer in progress, and waits in the queue for its deferral."""
    batches: list[int] = []

    async def job(ctx: dict[str, Any], outcome: str) -> None:
        await asyncio.sleep(0.05)  # all of them end in about the same turn of the loop
        if outcome == "fail":
            raise ValueError("this job fails")
        if outcome == "later" and ctx["job_try"] == 1:
            raise Retry(defer=60)

    class Counting(ClaimingWorker):
        async def _finish_all(self) -> None:
            if self._finish is None:
                script = self.pool.register_script(FINISH)

                async def counted(args: list[str]) -> Any:
                    batches.append((len(args) - 1) // 2)  # the queue, then two arguments a job
                    return await script(args=args)

                self._finish = cast(AsyncScript, counted)
            await super()._finish_all()

    async def scenario(url: str) -> tuple[set[bytes], list[tuple[bytes, float]]]:
        redis = ArqRedis.from_url(url)
        try:
            for n in range(12):
                await redis.enqueue_job("job", "done", _job_id=f"done-{n}")
            await redis.enqueue_job("job", "fail", _job_id="fail")
            await redis.enqueue_job("job", "later", _job_id="later")
            worker = Counting(
                functions=[func(job, name="job", keep_result=0)],
                redis_pool=redis,
                max_jobs=20,
                poll_delay=0.005,
                handle_signals=False,
            )
            running = asyncio.create_task(worker.main())
            settled = {b"arq:job:later", b"arq:retry:later"}
            deadline = asyncio.get_running_loop().time() + 10
            while asyncio.get_running_loop().time() < deadline:  # until the store of jobs is as expected
                found = await redis.keys("*")
                keys = {k for k in found if k.startswith((b"arq:job:", b"arq:retry:", b"arq:in-progress:"))}
                if keys == settled:
                    break
                await asyncio.sleep(0.02)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            return keys, await redis.zrange(default_queue_name, 0, -1, withscores=True)
        finally:
            await redis.aclose()

    began = timestamp_ms()
    with redis_database() as url:
        keys, queue = asyncio.run(scenario(url))
    assert keys == {b"arq:job:later", b"arq:retry:later"}
    assert [job_id for job_id, _ in queue] == [b"later"]
    assert began + 59_000 < queue[0][1] < timestamp_ms() + 61_000
    assert sum(batches) == 14  # each job finished (or put back) once
    assert max(batches) > 1


def test_a_full_worker_claims_again_when_a_job_ends_not_at_its_next_poll() -> None:
    """arq starts jobs only when it polls: a full worker left its slots empty from the end of its jobs
    until the next poll. Here a job that ends makes room that is claimed at once."""
    ended: list[float] = []

    async def job(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)
        ended.append(time.monotonic())

    async def scenario(url: str) -> float:
        redis = ArqRedis.from_url(url)
        try:
            for n in range(12):
                await redis.enqueue_job("job", _job_id=f"job-{n}")
            worker = ClaimingWorker(
                functions=[func(job, name="job", keep_result=0)],
                redis_pool=redis,
                max_jobs=2,
                burst=True,
                poll_delay=5.0,  # a poll every 5 s: 6 polls' worth of jobs would take 25 s
                handle_signals=False,
            )
            began = time.monotonic()
            await asyncio.wait_for(worker.main(), 20)
            return began
        finally:
            await redis.aclose()

    with redis_database() as url:
        began = asyncio.run(scenario(url))
    assert len(ended) == 12
    assert max(ended) - began < ROOM_WAIT  # all within the first poll's claiming
