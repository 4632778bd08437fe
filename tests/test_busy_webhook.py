"""Deliveries waiting for a busy webhook's slot are taken up as sends end, however they were queued.

The real application (SQLite store, read models), the embedded queue, the deliver job and the sender,
sending to an aiohttp target on loopback that answers after 20 ms; no follower and no sweep run, so
whatever is left waiting stays left.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from uuid import UUID

from aiohttp import web

from domain.deliveries import Delivery, DeliveryStatus
from domain.events import Publication
from domain.roles import Role
from domain.webhooks import WebhookSpec
from hookline.settings import Settings
from hookline.wiring import build_application, utcnow
from store.readmodel import SQLViews
from tests.support import free_port
from workers.inprocess import InProcessQueue
from workers.jobs import PER_WEBHOOK, Jobs, embedded_share
from workers.ratelimit import LocalRateLimiter
from workers.sender import Sender

COUNT = 100
SHARE = 4  # sends at once to the one webhook
ANSWER_SECONDS = 0.02


def test_a_busy_webhooks_waiting_deliveries_are_all_sent_when_a_sweep_names_them_again(
    tmp_path: Path,
) -> None:
    """As at the end of a long burst: the read model no longer holds the deliveries in memory, and a
    sweep of the store queues the unfinished ones again while they wait for a slot. Each send that
    ends must still hand its slot on to a waiting delivery, also when the delivery woken for it was
    sent meanwhile by its other job: the last ones must not wait for the next sweep."""
    app = build_application(
        Settings(database_url=f"sqlite:///{tmp_path}/hookline.sqlite3", allow_private_targets=True)
    )
    views = app.views
    assert isinstance(views, SQLViews)
    in_flight, peak, arrived = 0, 0, 0
    all_arrived = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        nonlocal in_flight, peak, arrived
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(ANSWER_SECONDS)
        in_flight -= 1
        arrived += 1
        if arrived == COUNT:
            all_arrived.set()
        return web.Response(text="ok")

    def unfinished(deliveries: list[UUID]) -> list[UUID]:
        states: list[Delivery] = [app.repository.get(d) for d in deliveries]
        return [s.id for s in states if isinstance(s, Delivery) and s.status != DeliveryStatus.SUCCEEDED]

    async def scenario() -> list[UUID]:
        target = web.AppRunner(web.Application())
        target.app.router.add_post("/slow", slow)
        await target.setup()
        port = free_port()
        await web.TCPSite(target, "127.0.0.1", port).start()
        principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
        spec = WebhookSpec(
            name="slow", event_types=("slow.event",), target_url=f"http://127.0.0.1:{port}/slow"
        )
        app.create_webhook(principal, spec, active=True, allow_duplicate=True)
        events = app.publish_events(principal, [Publication("slow.event", {"n": n}) for n in range(COUNT)])
        views.catch_up()
        deliveries = [d for ids in app.fan_out_many([event_id for event_id, _ in events]) for d in ids]
        views.catch_up()
        views.cache.clear()  # as after a long backlog: the states are read back from the store
        assert len(deliveries) == COUNT

        sender = Sender(allow_private_targets=True, clock=utcnow)
        await sender.start()

        async def handle(kind: str, item: UUID) -> float | None:
            assert kind == "deliver"
            return await jobs.deliver(item)

        queue = InProcessQueue(handle, concurrency=64)
        jobs = Jobs(app, sender.send, LocalRateLimiter(), per_webhook=SHARE, requeue=queue.deliver)
        try:
            async with queue.running():
                for delivery_id in deliveries:
                    queue.deliver(delivery_id)
                for _ in range(2):
                    await asyncio.sleep(3 * ANSWER_SECONDS)
                    for delivery_id in deliveries:  # a sweep: every unfinished delivery, again
                        queue.deliver(delivery_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_arrived.wait(), 10)
                await asyncio.sleep(0.2)  # the last records
                return unfinished(deliveries)
        finally:
            await sender.close()
            await target.cleanup()

    try:
        left = asyncio.run(scenario())
    finally:
        app.close()
    assert peak == SHARE
    assert left == [], f"{len(left)} of {COUNT} deliveries were left waiting for a sweep"
    assert arrived == COUNT


def test_one_webhook_gets_at_most_half_of_serves_sends() -> None:
    assert embedded_share(64) == PER_WEBHOOK == 32
    assert embedded_share(1_000) == PER_WEBHOOK
    assert embedded_share(16) == 8
    assert embedded_share(1) == 1
