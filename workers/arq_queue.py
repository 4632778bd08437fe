"""The distributed queue: jobs (ids only) go to Redis for `hookline worker` processes run by arq.

Job ids are derived from what the job is for, so that the dispatcher, the sweeper and any number of
gateways can submit the same job again and arq keeps one: `fan_out:<event>`, and
`deliver:<delivery>:<due ms>` (a new attempt time is a new job). A deliver job carries its due time:
when the delivery has moved on to another one, the job is obsolete and ends without sending (the job
for the current due time does the work), so a late resubmission never doubles a send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import Future
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from arq.connections import ArqRedis

from domain.deliveries import due_key

log = structlog.get_logger("hookline.queue")

FAN_OUT = "fan_out"
DELIVER = "deliver"


def fan_out_job_id(event_id: UUID) -> str:
    return f"{FAN_OUT}:{event_id}"


def deliver_job_id(delivery_id: UUID, at: datetime | None) -> str:
    return f"{DELIVER}:{delivery_id}:{due_key(at)}"


class ArqQueue:
    """Submits jobs from any thread; a submission that fails (Redis down) is logged and left to the
    sweeper, which re-reads the store."""

    def __init__(self, redis: ArqRedis, loop: asyncio.AbstractEventLoop) -> None:
        self.redis = redis
        self.loop = loop

    def fan_out(self, event_id: UUID) -> None:
        self._submit(self.redis.enqueue_job(FAN_OUT, str(event_id), _job_id=fan_out_job_id(event_id)))

    def deliver(self, delivery_id: UUID, at: datetime | None = None) -> None:
        self._submit(
            self.redis.enqueue_job(
                DELIVER,
                str(delivery_id),
                due_key(at),
                _job_id=deliver_job_id(delivery_id, at),
                _defer_until=at,
            )
        )

    def _submit(self, enqueue: Coroutine[Any, Any, Any]) -> None:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(enqueue, self.loop)
        future.add_done_callback(_log_failure)

    async def depth(self) -> int:
        return int(await self.redis.zcard("arq:queue"))


def _log_failure(future: Future[Any]) -> None:
    error = future.exception()
    if error is not None:
        log.warning("could not queue a job; the sweeper will queue it again", error=str(error))
