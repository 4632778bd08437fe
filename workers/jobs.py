"""The two jobs, whichever queue runs them: fan an event out, deliver one delivery. Both rerun safely.

Their writes go through batchers, so that many jobs running at once share few transactions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import structlog

from domain.application import Hookline
from domain.deliveries import Attempt, Delivery
from domain.requests import Send
from workers.batching import Batcher
from workers.ratelimit import RateLimiter

log = structlog.get_logger("hookline.jobs")


# Sends in flight to one webhook at once, per process: a target that hangs holds at most this many
# of the process's slots, and the other webhooks' deliveries keep flowing.
PER_WEBHOOK = 8
BUSY_WAIT = 0.5


class Jobs:
    def __init__(
        self, app: Hookline, send: Send, limiter: RateLimiter, per_webhook: int = PER_WEBHOOK
    ) -> None:
        self.app = app
        self.send = send
        self.limiter = limiter
        self.per_webhook = per_webhook
        self._in_flight: dict[UUID, int] = {}
        self._fan_outs: Batcher[UUID, list[UUID]] = Batcher(app.fan_out_many)
        self._records: Batcher[tuple[Delivery, Attempt], None] = Batcher(self._record_all)

    async def fan_out(self, event_id: UUID) -> list[UUID]:
        return await self._fan_outs.submit(event_id)

    async def deliver(self, delivery_id: UUID, due: int | None = None) -> float | None:
        """Makes the delivery's next attempt; returns seconds to wait when it may not go yet.

        `due` (see `due_key`) is the attempt time the job was queued for, if it names one."""
        busy = {w for w, n in self._in_flight.items() if n >= self.per_webhook}
        if busy:  # cheaply, before loading everything: is this delivery for a busy webhook?
            known = (await asyncio.to_thread(self.app.read.states, [delivery_id])).get(delivery_id)
            if isinstance(known, Delivery) and known.webhook_id in busy:
                return BUSY_WAIT
        prepared = await asyncio.to_thread(self.app.prepare_delivery, delivery_id, due)
        if prepared is None:
            return None
        if isinstance(prepared, datetime):  # not due yet (an early or repeated job)
            return max((prepared - self.app.clock()).total_seconds(), 0.0)
        if prepared.rate_limit_per_second is not None:
            wait = await self.limiter.acquire(prepared.webhook_id, prepared.rate_limit_per_second)
            if wait > 0:
                return wait
        webhook_id = prepared.webhook_id
        if self._in_flight.get(webhook_id, 0) >= self.per_webhook:
            return BUSY_WAIT
        self._in_flight[webhook_id] = self._in_flight.get(webhook_id, 0) + 1
        try:
            attempt = await self.send(prepared.request, prepared.delivery.next_attempt_number)
        finally:
            left = self._in_flight.pop(webhook_id) - 1
            if left:
                self._in_flight[webhook_id] = left
        await self._records.submit((prepared.delivery, attempt))
        log.debug(
            "attempt recorded",
            delivery_id=str(delivery_id),
            attempt=attempt.number,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )
        return None

    def _record_all(self, attempts: Sequence[tuple[Delivery, Attempt]]) -> list[None]:
        self.app.record_attempts(attempts)
        return [None] * len(attempts)
