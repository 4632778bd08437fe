"""What `ClaimingWorker` (workers/arq_worker.py) takes from arq's worker beyond its public API, pinned
against the installed arq on a real Redis: an arq release that changes one of these fails here, by
name, instead of leaving the worker to claim, count or finish jobs wrongly without a word.

ClaimingWorker replaces `start_jobs` and `finish_job`, ticks its liveness in `_poll_iteration`, and
counts running jobs with arq's `sem`, `job_counter` and `_release_sem_dec_counter_on_complete`; it
starts jobs with arq's `run_job`, puts them in `tasks`, and stops claiming when `allow_pick_jobs`
goes false. Its CLAIM and FINISH scripts must do to Redis what arq's own claim and finish do.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker, func

from tests.support import redis_database
from workers.arq_worker import ClaimingWorker

MAX_JOBS = 3


async def idle(ctx: dict[str, Any]) -> None:
    """A job that runs until the test lets it end (ctx["release"])."""
    await ctx["release"].wait()


def with_redis(scenario: Callable[[ArqRedis], Awaitable[Any]]) -> Any:
    async def run(url: str) -> Any:
        redis = ArqRedis.from_url(url)
        try:
            return await scenario(redis)
        finally:
            await redis.aclose()

    with redis_database() as url:
        return asyncio.run(run(url))


def worker(cls: type[Worker], redis: ArqRedis, **settings: Any) -> Worker:
    return cls(
        functions=[func(idle, name="job", keep_result=0)],
        redis_pool=redis,
        handle_signals=False,
        max_jobs=MAX_JOBS,
        ctx={"release": asyncio.Event()},
        **settings,
    )


def parameters(method: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(method).parameters)


def test_the_methods_claiming_worker_overrides_or_calls_keep_their_names_and_parameters() -> None:
    """An override whose name arq changed would never be called (arq's own claim would run, slowly);
    one whose parameters changed would be called wrongly."""
    assert parameters(Worker.start_jobs) == ["self", "job_ids"]
    assert parameters(Worker.run_job) == ["self", "job_id", "score"]
    assert parameters(Worker._release_sem_dec_counter_on_complete) == ["self"]
    assert parameters(Worker._poll_iteration) == parameters(ClaimingWorker._poll_iteration) == ["self"]
    assert "self._poll_iteration()" in inspect.getsource(Worker.main)  # each poll, full or idle
    finish = parameters(Worker.finish_job)
    assert finish == [
        "self",
        "job_id",
        "finish",
        "result_data",
        "result_timeout_s",
        "keep_result_forever",
        "incr_score",
        "keep_in_progress",
    ]
    assert parameters(ClaimingWorker.finish_job) == finish
    assert parameters(ClaimingWorker.start_jobs) == parameters(Worker.start_jobs)


def test_arq_counts_a_running_job_with_one_of_max_jobs_plus_one_permits_and_the_counter() -> None:
    """ClaimingWorker takes `max_jobs - job_counter` permits at once (arq's spare one included), and
    gives each back through `_release_sem_dec_counter_on_complete` when its job ends."""

    async def scenario(redis: ArqRedis) -> None:
        plain = worker(Worker, redis)
        assert isinstance(plain.sem, asyncio.BoundedSemaphore)
        assert (plain.job_counter, plain.allow_pick_jobs, plain.tasks) == (0, True, {})
        for _ in range(MAX_JOBS + 1):
            await asyncio.wait_for(plain.sem.acquire(), 0.1)  # max_jobs + 1 permits
        assert plain.sem.locked()
        plain.job_counter = MAX_JOBS
        plain._release_sem_dec_counter_on_complete()
        assert plain.job_counter == MAX_JOBS - 1
        assert not plain.sem.locked()  # one permit back
        for _ in range(MAX_JOBS):
            plain._release_sem_dec_counter_on_complete()
        assert plain.job_counter == -1
        # Every permit was back: the release is the semaphore's.
        with pytest.raises(ValueError, match="released too many times"):
            plain._release_sem_dec_counter_on_complete()

    with_redis(scenario)


def test_arq_polls_through_start_jobs_and_stops_picking_when_told_to_drain() -> None:
    """arq's poll hands the due jobs' ids to `start_jobs` (the method ClaimingWorker replaces) while
    it may pick jobs and has room; a drain signal turns `allow_pick_jobs` off, after which the poll
    starts nothing but still clears the finished tasks out of `tasks` (which the drain waits on)."""
    calls: list[list[bytes]] = []

    class Recording(Worker):
        async def start_jobs(self, job_ids: list[bytes]) -> None:
            calls.append(list(job_ids))

    async def scenario(redis: ArqRedis) -> None:
        await redis.enqueue_job("job", _job_id="due")
        await redis.enqueue_job("job", _job_id="later", _defer_by=60)
        polling = worker(Recording, redis)
        await polling._poll_iteration()
        assert calls == [[b"due"]]

        polling.job_counter = MAX_JOBS  # full: no claim
        await polling._poll_iteration()
        polling.job_counter = 0
        assert len(calls) == 1

        ended = asyncio.create_task(asyncio.sleep(0))
        await ended
        polling.tasks["ended"] = ended
        polling.handle_sig_wait_for_completion(signal.SIGTERM)
        assert polling.allow_pick_jobs is False
        await polling._poll_iteration()
        assert len(calls) == 1
        assert polling.tasks == {}
        await asyncio.sleep(0.2)  # arq's drain task sees no task left, and ends

    with_redis(scenario)


async def claimed(cls: type[Worker], redis: ArqRedis, prefix: str) -> tuple[list[str], dict[str, Any]]:
    """Queues four jobs (due; deferred; in progress elsewhere; already gone from the queue) in a queue
    of their own, lets a worker of `cls` claim them, and answers which jobs it started and what the
    claim left in Redis (each in-progress key's value and time to live, in whole seconds)."""
    queue = f"arq:queue:{prefix}"
    ids = [f"{prefix}-{name}" for name in ("due", "later", "elsewhere", "gone")]
    for job_id in ids[:3]:
        await redis.enqueue_job("job", _job_id=job_id, _queue_name=queue)
    await redis.zadd(queue, {ids[1]: timestamp_ms() + 60_000})
    await redis.psetex(in_progress_key_prefix + ids[2], 60_000, b"elsewhere")
    claiming = worker(cls, redis, queue_name=queue)
    await claiming.start_jobs([job_id.encode() for job_id in ids])
    left: dict[str, Any] = {}
    for job_id in ids:
        key = in_progress_key_prefix + job_id
        value = await redis.get(key)
        if value is not None:
            left[job_id.removeprefix(f"{prefix}-")] = (value, round(await redis.pttl(key) / 1000))
    started = sorted(job_id.removeprefix(f"{prefix}-") for job_id in claiming.tasks)
    claiming.ctx["release"].set()
    await asyncio.gather(*claiming.tasks.values())
    assert claiming.job_counter == 0
    return started, left


def test_the_claim_script_claims_what_arqs_start_jobs_claims_and_marks_it_alike() -> None:
    async def scenario(redis: ArqRedis) -> None:
        arqs = await claimed(Worker, redis, "arq")
        ours = await claimed(ClaimingWorker, redis, "claiming")
        assert arqs[0] == ["due"]
        assert arqs[1]["elsewhere"] == (b"elsewhere", 60)
        assert set(arqs[1]) == {"due", "elsewhere"}
        assert ours == arqs

    with_redis(scenario)


async def finished(
    redis: ArqRedis, plain: Worker, claiming: ClaimingWorker, finish: bool, incr_score: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same job, once finished by arq's `finish_job` and once by ClaimingWorker's: what each
    leaves of it in Redis (its keys, whether it is in the abort set, how far its score moved)."""
    left = []
    for finishing in (plain, claiming):
        job_id = f"{type(finishing).__name__}-{finish}-{incr_score}"
        await redis.enqueue_job("job", _job_id=job_id)
        await redis.psetex(in_progress_key_prefix + job_id, 60_000, b"1")
        await redis.incr(retry_key_prefix + job_id)
        await redis.zadd(abort_jobs_ss, {job_id: timestamp_ms()})
        score = await redis.zscore(finishing.queue_name, job_id)
        await finishing.finish_job(job_id, finish, None, None, False, incr_score, None)
        prefixes = {"job": job_key_prefix, "retry": retry_key_prefix, "in progress": in_progress_key_prefix}
        after = await redis.zscore(finishing.queue_name, job_id)
        left.append(
            {
                **{name: bool(await redis.exists(prefix + job_id)) for name, prefix in prefixes.items()},
                "aborting": await redis.zscore(abort_jobs_ss, job_id) is not None,
                "moved": None if after is None or score is None else after - score,
            }
        )
    return left[0], left[1]


def test_the_finish_script_leaves_a_job_as_arqs_finish_job_leaves_it() -> None:
    """Done or failed (finish), put back without a deferral (Retry()), put back for later
    (Retry(defer=...)): each leaves the same keys and score."""
    retry_ms = Retry(defer=1.5).defer_score
    assert retry_ms == 1500

    async def scenario(redis: ArqRedis) -> None:
        plain, claiming = worker(Worker, redis), worker(ClaimingWorker, redis)
        assert isinstance(claiming, ClaimingWorker)
        done = await finished(redis, plain, claiming, True, None)
        assert done[0] == {
            "job": False,
            "retry": False,
            "in progress": False,
            "aborting": False,
            "moved": None,
        }
        again = await finished(redis, plain, claiming, False, None)
        assert again[0] == {"job": True, "retry": True, "in progress": False, "aborting": True, "moved": 0}
        later = await finished(redis, plain, claiming, False, retry_ms)
        assert later[0] == {"job": True, "retry": True, "in progress": False, "aborting": True, "moved": 1500}
        assert done[1] == done[0]
        assert again[1] == again[0]
        assert later[1] == later[0]

    with_redis(scenario)
