"""The sweeper: a sweep skipped while the embedded queue works through a backlog is made up by the next
one, which queues again every unfinished delivery that is due (real application on SQLite, real
dispatcher; the queue only records what it is given)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from uuid import UUID

from domain.events import Publication
from domain.roles import Role
from domain.webhooks import WebhookSpec
from hookline.settings import Settings
from hookline.wiring import build_application, sweeping
from store.readmodel import SQLViews
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
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/hookline.sqlite3",
        sweep_seconds=SWEEP_SECONDS,
        allow_private_targets=True,
    )
    app = build_application(settings)
    views = app.views
    assert isinstance(views, SQLViews)
    principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
    spec = WebhookSpec(name="t", event_types=("a.b",), target_url="http://127.0.0.1:9/")
    app.create_webhook(principal, spec, active=True, allow_duplicate=True)
    published = app.publish_events(principal, [Publication("a.b", {"n": n}) for n in range(3)])
    views.catch_up()
    deliveries = [d for made in app.fan_out_many([e for e, _ in published]) for d in made]
    views.catch_up()
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
