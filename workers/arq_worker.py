"""arq's worker, claiming the jobs it starts in one round trip to Redis instead of four per job.

arq's `start_jobs` claims each job id a poll read with WATCH, EXISTS, ZSCORE and MULTI / PSETEX / EXEC:
four round trips, also for the ids it then skips (the jobs it already runs are still in the queue,
and another worker's poll reads the same ids), which costs a worker more CPU than many of its
deliveries do. Here one script makes the same checks and claims, atomically, for as many jobs as the
worker has room for, and, when the worker is full, claims again as soon as a job ends rather than at
the next poll. Jobs that end in the same turn of the loop are finished together by one script (arq
sends a MULTI/EXEC of five commands for each). Running and retrying a job stay arq's.

It counts its jobs with arq's own `sem`, `job_counter` and `_release_sem_dec_counter_on_complete`,
stops on `allow_pick_jobs`, and ticks `ticked` at each of arq's polls (`_poll_iteration`, which
goes round whether the worker is full or idle): private names, pinned against the installed arq by
tests/test_arq_internals.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.commands.core import AsyncScript

# KEYS[1]: the queue. ARGV: now (ms), how long a claim lasts (ms), at most how many to claim, how many
# of the queue's due jobs to look at. Reads the head of the queue itself, so that each claim sees the
# queue as it is (a job put back keeps its place); a job is claimed, as arq claims it, when it is due
# and not in progress. Answers the claimed jobs' ids and scores.
CLAIM = f"""
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[4])
local claimed = {{}}
for i = 1, #due, 2 do
  if #claimed >= 2 * tonumber(ARGV[3]) then break end
  local key = '{in_progress_key_prefix}' .. due[i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('PSETEX', key, ARGV[2], '1')
    claimed[#claimed + 1] = due[i]
    claimed[#claimed + 1] = due[i + 1]
  end
end
return claimed
"""


# ARGV: the queue, then (job id, score increment) pairs. What arq's finish_job does for a job that
# keeps no result, each job atomically: a finished job (increment '') is deleted with its in-progress
# and retry keys and leaves the queue and the abort set; one put back (Retry) is no longer in
# progress, and its score grows by the increment ('0': as it was).
FINISH = f"""
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  redis.call('DEL', '{in_progress_key_prefix}' .. id)
  if ARGV[i + 1] == '' then
    redis.call('DEL', '{retry_key_prefix}' .. id, '{job_key_prefix}' .. id)
    redis.call('ZREM', '{abort_jobs_ss}', id)
    redis.call('ZREM', ARGV[1], id)
  elseif ARGV[i + 1] ~= '0' then
    redis.call('ZINCRBY', ARGV[1], ARGV[i + 1], id)
  end
end
return (#ARGV - 1) / 2
"""


# How long a poll's start_jobs goes on claiming as jobs end; then the next poll looks again.
ROOM_WAIT = 0.5


class ClaimingWorker(Worker):
    def __init__(self, *, ticked: Callable[[], None] = lambda: None, **settings: Any) -> None:
        super().__init__(**settings)
        self.ticked = ticked  # the claim loop's liveness (see hookline.runtime.Liveness)
        self._claim: AsyncScript | None = None
        self._room = asyncio.Event()  # set when a job ends
        self._finish: AsyncScript | None = None
        self._finishing: list[tuple[str, str, asyncio.Future[None]]] = []
        self._finishers: set[asyncio.Task[None]] = set()  # held while they run (the loop only weakly)

    async def _poll_iteration(self) -> None:
        self.ticked()
        await super()._poll_iteration()

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._room.set()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Starts due jobs that do not run anywhere, as many as there is room for, from the head of
        the queue as it is at each claim (`job_ids`, what arq's poll read, only tell that some job
        is due). When the worker is full it waits for a job to end and claims again, for up to
        ROOM_WAIT: arq's returns, and its slots stay empty from the end of its jobs until its next
        poll. It returns as soon as a claim finds fewer due jobs than it had room for.

        The semaphore has a permit for each of `max_jobs` and one more: the first permit is awaited
        as arq awaits it, the others are free while fewer than `max_jobs` jobs run."""
        if not job_ids:
            return
        if self._claim is None:  # (the pool is made when the worker starts)
            self._claim = self.pool.register_script(CLAIM)
        claim = self._claim
        until = self.loop.time() + ROOM_WAIT
        while self.allow_pick_jobs:  # (a signal to drain stops the picking)
            self._room.clear()
            await self.sem.acquire()
            room = self.max_jobs - self.job_counter
            if room <= 0:
                self.sem.release()
                try:
                    await asyncio.wait_for(self._room.wait(), until - self.loop.time())
                except TimeoutError:
                    return
                continue
            for _ in range(room - 1):
                await self.sem.acquire()
            claimed: list[tuple[str, int]] = []
            try:
                pairs = await claim(
                    keys=[self.queue_name],
                    args=[
                        timestamp_ms(),
                        int(self.in_progress_timeout_s * 1000),
                        room,
                        self.queue_read_limit,
                    ],
                )
                claimed = [(pairs[i].decode(), int(float(pairs[i + 1]))) for i in range(0, len(pairs), 2)]
            finally:
                for _ in range(room - len(claimed)):
                    self.sem.release()
            for job_id, score in claimed:
                self.job_counter += 1
                task = self.loop.create_task(self.run_job(job_id, score))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task
            if len(claimed) < room:
                return  # nothing more is due: the next poll looks again

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's, for the jobs of a turn of the loop at once; a job that keeps a result or stays in
        progress (cron jobs) is finished by arq's own."""
        if result_data is not None or keep_in_progress is not None:
            await super().finish_job(
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_result_forever,
                incr_score,
                keep_in_progress,
            )
            return
        done = self.loop.create_future()
        self._finishing.append((job_id, "" if finish else str(incr_score or 0), done))
        if len(self._finishing) == 1:
            finisher = self.loop.create_task(self._finish_all())
            self._finishers.add(finisher)
            finisher.add_done_callback(self._finishers.discard)
        await done

    async def _finish_all(self) -> None:
        await asyncio.sleep(0)  # the jobs that end in this turn go along
        batch, self._finishing = self._finishing, []
        if self._finish is None:
            self._finish = self.pool.register_script(FINISH)
        pairs = [arg for job_id, how, _ in batch for arg in (job_id, how)]
        failed: Exception | None = None
        try:
            await self._finish(args=[self.queue_name, *pairs])
        except Exception as error:  # every job of the batch learns that its finish failed
            failed = error
        except BaseException:  # cancelled: so are the jobs waiting for it
            for _, _, done in batch:
                done.cancel()
            raise
        for _, _, done in batch:
            if done.done():
                continue
            if failed is None:
                done.set_result(None)
            else:
                done.set_exception(failed)
