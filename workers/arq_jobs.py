"""The jobs as arq runs them in `hookline worker`: thin shells over `workers.jobs.Jobs`.

Resources (application, sender, rate limiter) are opened by the worker's `on_startup` into `ctx`.
A delivery that may not go yet (rate limit, not due) is deferred with `arq.Retry`, keeping its job id.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID

from arq import Retry
from arq.utils import timestamp_ms, to_unix_ms
from arq.worker import func

from workers.jobtypes import Busy, Later

MAX_DEFERRALS = 100_000  # a rate-limited delivery may be put back many times; it is never dropped
JOB_TIMEOUT = 60  # longer than any attempt's total timeout; a killed worker's job runs again after it


async def fan_out(ctx: dict[str, Any], *event_ids: str, trace_parents: dict[str, str] | None = None) -> int:
    """Fans out the events the queue gathered into the job (one, or a flush's worth). An event that
    cannot be fanned out fails the job once the others are done; the sweeper queues it again.
    `trace_parents`: the traceparent each event was published with, when traces are on."""
    traced = trace_parents or {}
    made = await asyncio.gather(
        *(ctx["jobs"].fan_out(UUID(event_id), traced.get(event_id)) for event_id in event_ids),
        return_exceptions=True,
    )
    for result in made:
        if isinstance(result, BaseException):
            raise result
    return sum(len(deliveries) for deliveries in made if isinstance(deliveries, list))


async def deliver(
    ctx: dict[str, Any], delivery_id: str, due: int | None = None, owed_by: str | None = None
) -> None:
    """Attempts a delivery; `owed_by` names the event that owes it when nothing about it is stored."""
    if owed_by is not None:
        ctx["jobs"].app.owed.remember([UUID(delivery_id)], UUID(owed_by))
    outcome = await ctx["jobs"].deliver(UUID(delivery_id), due)
    if isinstance(outcome, Later | Busy):
        raise put_back(ctx, outcome)


def put_back(ctx: dict[str, Any], outcome: Later | Busy) -> Retry:
    """The job again `Later.seconds` from now; or, for a webhook that was busy, `Busy.seconds` after
    it was first queued, then twice that, four times... (never later than that from now).

    arq orders jobs by when they may run: a job put back `wait` from now goes behind every job queued
    until then, which during a burst is the whole backlog, so one of the first deliveries would arrive
    after the last. Near its first place it runs again soon after the jobs queued with it; one whose
    webhook stays busy moves back further each time, so it never holds the head of the queue."""
    wait = outcome.seconds
    if isinstance(outcome, Later):
        return Retry(defer=wait)
    now = timestamp_ms()
    place = to_unix_ms(ctx["enqueue_time"]) + round(wait * 1000 * 2 ** min(ctx["job_try"] - 1, 30))
    return Retry(defer=timedelta(milliseconds=min(place - now, round(wait * 1000))))


FUNCTIONS = [
    func(fan_out, name="fan_out", keep_result=0, timeout=JOB_TIMEOUT),
    func(deliver, name="deliver", keep_result=0, timeout=JOB_TIMEOUT, max_tries=MAX_DEFERRALS),
]
