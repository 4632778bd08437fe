"""The distributed queue: jobs (ids only) go to Redis for `hookline worker` processes run by arq.

Job ids are derived from what the job is for, so that the dispatcher, the sweeper and any number of
gateways can submit the same job again and arq keeps one: `fan_out:<event>` (or, for the events one
flush gathers, `fan_out:<digest of their ids>`: a job for many events costs arq's bookkeeping once;
a second fan-out of an event finds it done), and `deliver:<delivery>:<due ms>` (a new attempt time is
a new job). A deliver job carries its due time:
when the delivery has moved on to another one, the job is obsolete and ends without sending (the job
for the current due time does the work), so a late resubmission never doubles a send.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import structlog
from arq.connections import ArqRedis
from arq.constants import default_queue_name, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms

from domain.deliveries import due_key

log = structlog.get_logger("hookline.queue")


FAN_OUT = "fan_out"
DELIVER = "deliver"
FLUSH_LIMIT = 500  # jobs per round trip
FAN_OUT_BATCH = 100  # events per fan-out job

# arq's enqueue_job, for many jobs in one round trip: a job whose id is queued or has a result is kept
# as it is (the same rule, applied atomically, as arq's WATCH / MULTI).
ENQUEUE = f"""
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('EXISTS', '{job_key_prefix}' .. id, '{result_key_prefix}' .. id) == 0 then
    redis.call('PSETEX', '{job_key_prefix}' .. id, ARGV[i + 2], ARGV[i + 3])
    redis.call('ZADD', KEYS[1], ARGV[i + 1], id)
  end
end
return 0
"""


def fan_out_job_id(event_ids: Sequence[str]) -> str:
    if len(event_ids) == 1:
        return f"{FAN_OUT}:{event_ids[0]}"
    return f"{FAN_OUT}:{hashlib.blake2b(','.join(event_ids).encode(), digest_size=16).hexdigest()}"


def deliver_job_id(delivery_id: UUID, at: datetime | None) -> str:
    return f"{DELIVER}:{delivery_id}:{due_key(at)}"


class ArqQueue:
    """Submits jobs from any thread, gathered into one round trip to Redis per turn of the event loop
    (the events to fan out, into jobs of up to FAN_OUT_BATCH); a submission that fails (Redis down) is
    logged and left to the sweeper, which re-reads the store."""

    def __init__(self, redis: ArqRedis, loop: asyncio.AbstractEventLoop) -> None:
        self.redis = redis
        self.loop = loop
        self._enqueue = redis.register_script(ENQUEUE)
        self._lock = threading.Lock()
        self._pending: list[tuple[str, int, int, bytes]] = []
        self._fan_outs: list[str] = []
        self._trace_parents: dict[str, str] = {}  # of events to fan out, when traces are on
        self._flushing: set[asyncio.Task[None]] = set()

    def fan_out(self, event_id: UUID, trace_parent: str | None = None) -> None:
        self._add(fan_out=str(event_id), trace_parent=trace_parent)

    def deliver(self, delivery_id: UUID, at: datetime | None = None, owed_by: UUID | None = None) -> None:
        args = (str(delivery_id), due_key(at), *([str(owed_by)] if owed_by else []))
        job = self._job(deliver_job_id(delivery_id, at), DELIVER, args, at)
        self._add(job=job)

    def _add(
        self,
        *,
        job: tuple[str, int, int, bytes] | None = None,
        fan_out: str | None = None,
        trace_parent: str | None = None,
    ) -> None:
        """Adds to the pending lists; the first addition since the last flush schedules one. The lists
        are looked up under the lock: a flush swaps them for new ones, and one looked up before it
        would take the item after the flush had taken that list (a job lost until the next sweep)."""
        with self._lock:
            if job is not None:
                self._pending.append(job)
            if fan_out is not None:
                self._fan_outs.append(fan_out)
                if trace_parent is not None:
                    self._trace_parents[fan_out] = trace_parent
            first = len(self._pending) + len(self._fan_outs) == 1
        if first:
            self.loop.call_soon_threadsafe(self._flush_soon)

    def _job(
        self,
        job_id: str,
        function: str,
        args: tuple[object, ...],
        at: datetime | None,
        kwargs: dict[str, object] | None = None,
    ) -> tuple[str, int, int, bytes]:
        """What ENQUEUE takes for a job: its id, score (when it may run), time to live, and body."""
        now = timestamp_ms()
        score = to_unix_ms(at) if at is not None else now
        job = serialize_job(function, args, kwargs or {}, None, now, serializer=self.redis.job_serializer)
        return job_id, score, score - now + self.redis.expires_extra_ms, job

    def _flush_soon(self) -> None:
        task = self.loop.create_task(self._flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            fan_outs, self._fan_outs = list(dict.fromkeys(self._fan_outs)), []
            trace_parents, self._trace_parents = self._trace_parents, {}
        for start in range(0, len(fan_outs), FAN_OUT_BATCH):
            events = tuple(fan_outs[start : start + FAN_OUT_BATCH])
            traced = {e: trace_parents[e] for e in events if e in trace_parents}
            kwargs: dict[str, object] | None = {"trace_parents": traced} if traced else None
            pending.append(self._job(fan_out_job_id(events), FAN_OUT, events, None, kwargs))
        for start in range(0, len(pending), FLUSH_LIMIT):
            args = [value for job in pending[start : start + FLUSH_LIMIT] for value in job]
            try:
                await self._enqueue(keys=[default_queue_name], args=args)
            except Exception as error:  # Redis down or refusing: the store still has it all
                log.warning("could not queue jobs; the sweeper will queue them again", error=str(error))
                return

    async def flushed(self) -> None:
        """Until what was submitted so far has gone to Redis (or failed to)."""
        while self._flushing or self._pending or self._fan_outs:
            if not self._flushing:
                self._flush_soon()
            await asyncio.gather(*self._flushing, return_exceptions=True)

    async def depth(self) -> int:
        return int(await self.redis.zcard(default_queue_name))

    async def due(self) -> int:
        """Jobs in the queue that may run now (not those deferred: retries, rate limits)."""
        return int(await self.redis.zcount(default_queue_name, "-inf", timestamp_ms()))
