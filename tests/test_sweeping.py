"""The sweeper: a sweep skipped while the embedded queue works through a backlog is made up by the next
one, which queues again every unfinished delivery that is due (real application on SQLite, real
dispatcher; the queue only records what it is given)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from uuid import UUID

from hookline.settings import Settings
from hookline.wiring import sweeping
from store.readmodel import SQLViews
from tests.apps import UNREACHABLE, application, deliveries_to
from workers.dispatch import Dispatcher

SWEEP_SECONDS = 0.05


class RecordingQueue:
    def __init__(self) -> None:
        self.delivered: list[UUID] = []
        self.fanned_out: list[UUID] = []

    def fan_out(self, event_id: UUID) -> None:
        self.fanned_out.append(event_id)

    def deliver(self, delivery_id: UUID, at: datetime | None = None) -> None:
        self.delivered.append(delivery_id)


def test_a_skipped_sweep_is_made_up_by_the_next_one(tmp_path: Path) -> None:
    app = application(tmp_path)
    settings = Settings(sweep_seconds=SWEEP_SECONDS)  # all the sweeper reads
    views = app.views
    assert isinstance(views, SQLViews)
    deliveries = deliveries_to(app, UNREACHABLE, 3)
    queue = RecordingQueue()
    backlog = True
    skipped_then = 0

    async def scenario() -> None:
        nonlocal backlog, skipped_then
        async with sweeping(Dispatcher(queue, views), views, settings, skip=lambda: backlog):
            await asyncio.sleep(SWEEP_SECONDS * 4)  # three or four sweeps, all skipped
            skipped_then = len(queue.delivered)
            backlog = False
            await asyncio.sleep(SWEEP_SECONDS * 3)

    try:
        asyncio.run(scenario())
    finally:
        app.close()
    assert skipped_then == 0
    assert set(queue.delivered) == set(deliveries)
