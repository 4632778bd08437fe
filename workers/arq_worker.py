"""arq's worker, claiming the jobs it starts in one round trip to Redis instead of four per job.

arq's `start_jobs` claims each job id a poll read with WATCH, EXISTS, ZSCORE and MULTI / PSETEX / EXEC:
four round trips, also for the ids it then skips (the jobs it already runs are still in the queue,
and another worker's poll reads the same ids). With two workers, more than half of those claims were
skipped ones, and claiming was a large part of a worker's CPU per delivery. Here one script makes the
same checks and claims, atomically, for as many jobs as the worker has room for. Jobs that end in
the same turn of the loop are finished together by one script (arq sends a MULTI/EXEC of five
commands for each). Running and retrying a job stay arq's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.commands.core import AsyncScript

# KEYS[1]: the queue. ARGV: now (ms), how long a claim lasts (ms), at most how many to claim, then job
# ids in queue order. A job is claimed, as arq claims it, when it is not in progress and is in the queue
# and due. Answers the claimed jobs' ids and scores, then how many ids it looked at.
CLAIM = f"""
local claimed = {{}}
local looked = 0
for i = 4, #ARGV do
  if #claimed >= 2 * tonumber(ARGV[3]) then break end
  looked = looked + 1
  local key = '{in_progress_key_prefix}' .. ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if score and tonumber(score) <= tonumber(ARGV[1]) then
      redis.call('PSETEX', key, ARGV[2], '1')
      claimed[#claimed + 1] = ARGV[i]
      claimed[#claimed + 1] = score
    end
  end
end
claimed[#claimed + 1] = looked
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


class ClaimingWorker(Worker):
    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._claim: AsyncScript | None = None
        self._finish: AsyncScript | None = None
        self._finishing: list[tuple[str, str, asyncio.Future[None]]] = []
        self._finisher: asyncio.Task[None] | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Starts the jobs of `job_ids` that are due and not running anywhere, as many as there is
        room for; as arq's, it stops when the worker is full (the next poll reads the queue again).

        The semaphore has a permit for each of `max_jobs` and one more: the first permit is awaited
        as arq awaits it, the others are free while fewer than `max_jobs` jobs run."""
        if self._claim is None:  # (the pool is made when the worker starts)
            self._claim = self.pool.register_script(CLAIM)
        claim = self._claim
        ids = [job_id.decode() for job_id in job_ids]
        while ids:
            await self.sem.acquire()
            room = min(self.max_jobs - self.job_counter, len(ids))
            if room <= 0:
                self.sem.release()
                return
            for _ in range(room - 1):
                await self.sem.acquire()
            claimed: list[tuple[str, int]] = []
            try:
                answer = await claim(
                    keys=[self.queue_name],
                    args=[timestamp_ms(), int(self.in_progress_timeout_s * 1000), room, *ids],
                )
                *pairs, looked = answer
                claimed = [(pairs[i].decode(), int(float(pairs[i + 1]))) for i in range(0, len(pairs), 2)]
                ids = ids[int(looked) :]
            finally:
                for _ in range(room - len(claimed)):
                    self.sem.release()
            for job_id, score in claimed:
                self.job_counter += 1
                task = self.loop.create_task(self.run_job(job_id, score))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task

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
            self._finisher = self.loop.create_task(self._finish_all())
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
