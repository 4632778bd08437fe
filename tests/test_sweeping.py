"""The sweeper: a sweep skipped while the embedded queue works through a backlog is made up by the next
one, which queues again every unfinished delivery that is due (real application on SQLite, real
dispatcher; the queue only records what it is given)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hookline.runtime import sweeping
from tests.apps import UNREACHABLE, RecordingQueue, deliveries_to, opened
from workers.dispatch import Dispatcher

SWEEP_SECONDS = 0.05


def test_a_skipped_sweep_is_made_up_by_the_next_one(tmp_path: Path) -> None:
    app, read_model = (both := opened(tmp_path)).app, both.read_model
    deliveries = deliveries_to(app, UNREACHABLE, 3)
    queue = RecordingQueue()
    backlog = True
    skipped_then = 0

    async def scenario() -> None:
        nonlocal backlog, skipped_then

        async def backlogged() -> bool:
            return backlog

        async with sweeping(Dispatcher(queue, read_model.queries), SWEEP_SECONDS, skip=backlogged):
            await asyncio.sleep(SWEEP_SECONDS * 4)  # three or four sweeps, all skipped
            skipped_then = len(queue.delivered)
            backlog = False
            await asyncio.sleep(SWEEP_SECONDS * 3)

    try:
        asyncio.run(scenario())
    finally:
        app.close()
    assert skipped_then == 0
    assert {delivery_id for delivery_id, _ in queue.delivered} == set(deliveries)
