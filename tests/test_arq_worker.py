"""`ClaimingWorker`, arq's worker with one round trip to claim jobs: two of them on one real Redis queue
run every job exactly once, never more at once than their `max_jobs`; a job deferred or claimed
elsewhere meanwhile is not claimed."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name, in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import func

from tests.support import redis_database
from workers.arq_worker import ClaimingWorker

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
