"""The deliver job on its own: a busy webhook's waiting deliveries (in serve and in a worker), a batch
with a damaged delivery.

The real application (SQLite store, read models), the embedded queue, the deliver job and the sender,
sending to an aiohttp target on loopback; no follower and no sweep run, so whatever is left waiting
stays left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast
from uuid import UUID, uuid4

import pytest
import structlog
from aiohttp import web
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic

from domain.application import Hookline, Prepared
from domain.deliveries import Delivery, DeliveryStatus
from domain.events import Event
from domain.roles import Role
from domain.webhooks import WebhookSpec
from hookline.wiring import utcnow
from tests.apps import UNREACHABLE, application, deliveries_to, opened
from tests.support import free_port
from workers.inprocess import InProcessQueue
from workers.jobs import MAX_TRIES, Jobs
from workers.jobtypes import DONE, Busy, Outcome
from workers.ratelimit import LocalRateLimiter
from workers.sender import Sender
from workers.slots import BUSY_WAIT, PER_WEBHOOK, SLOT_HOLD, HoldingSlots, ParkingSlots, embedded_share

COUNT = 100
SHARE = 4  # sends at once to the one webhook
ANSWER_SECONDS = 0.02


@contextlib.asynccontextmanager
async def target(answer: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """An aiohttp target on loopback; yields its URL."""
    runner = web.AppRunner(web.Application())
    runner.app.router.add_post("/target", answer)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/target"
    finally:
        await runner.cleanup()


def statuses(app: Hookline, deliveries: list[UUID]) -> list[str]:
    return [cast(Delivery, app.repository.get(d)).status for d in deliveries]


def test_a_busy_webhooks_waiting_deliveries_are_all_sent_when_a_sweep_names_them_again(
    tmp_path: Path,
) -> None:
    """As at the end of a long burst: the read model no longer holds the deliveries in memory, and a
    sweep of the store queues the unfinished ones again while they wait for a slot. Each send that
    ends must still hand its slot on to a waiting delivery, also when the delivery woken for it was
    sent meanwhile by its other job: the last ones must not wait for the next sweep."""
    app, read_model = (both := opened(tmp_path)).app, both.read_model
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

    async def scenario() -> list[str]:
        async with target(slow) as url:
            return await run(deliveries_to(app, url, COUNT))

    async def run(deliveries: list[UUID]) -> list[str]:
        read_model.cache.clear()  # as after a long backlog: the states are read back from the store
        sender = Sender(allow_private_targets=True, clock=utcnow)
        await sender.start()

        queue = InProcessQueue(concurrency=64)
        jobs = Jobs(app, sender.send, LocalRateLimiter(), ParkingSlots(queue.deliver, per_webhook=SHARE))
        try:
            async with queue.running(jobs.run):
                for delivery_id in deliveries:
                    queue.deliver(delivery_id)
                for _ in range(2):
                    await asyncio.sleep(3 * ANSWER_SECONDS)
                    for delivery_id in deliveries:  # a sweep: every unfinished delivery, again
                        queue.deliver(delivery_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_arrived.wait(), 10)
                await asyncio.sleep(0.2)  # the last records
                return statuses(app, deliveries)
        finally:
            await sender.close()

    try:
        ended = asyncio.run(scenario())
    finally:
        app.close()
    assert peak == SHARE
    left = [status for status in ended if status != DeliveryStatus.SUCCEEDED]
    assert left == [], f"{len(left)} of {COUNT} deliveries were left waiting for a sweep"
    assert arrived == COUNT


def test_a_delivery_that_cannot_be_prepared_fails_alone_and_its_batch_is_sent(tmp_path: Path) -> None:
    """Jobs that run together are prepared in one call; when that call raises (here a delivery whose
    stored record is damaged), each is prepared again on its own, so only the damaged one fails."""
    app = application(tmp_path)
    arrived = 0

    async def answer(_: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        return web.Response(text="ok")

    async def scenario() -> tuple[list[UUID], list[Outcome | BaseException]]:
        async with target(answer) as url:
            deliveries = deliveries_to(app, url, 10)
            damaged = uuid4()
            app.recorder.insert_events(
                [StoredEvent(damaged, 1, get_topic(Delivery.Created), b"not what was written")]
            )
            sender = Sender(allow_private_targets=True, clock=utcnow)
            await sender.start()
            jobs = Jobs(app, sender.send, LocalRateLimiter(), HoldingSlots())
            try:  # started in one turn of the loop: prepared in one batch
                outcomes = await asyncio.gather(
                    *(jobs.deliver(d) for d in [*deliveries[:5], damaged, *deliveries[5:]]),
                    return_exceptions=True,
                )
            finally:
                await sender.close()
            return deliveries, outcomes

    try:
        deliveries, outcomes = asyncio.run(scenario())
        ended = statuses(app, deliveries)
    finally:
        app.close()
    assert isinstance(outcomes.pop(5), MapperDeserialisationError)
    assert outcomes == [DONE] * 10
    assert arrived == 10
    assert ended == [DeliveryStatus.SUCCEEDED] * 10


def test_a_request_that_cannot_be_built_is_a_failed_attempt_and_the_delivery_ends_failed(
    tmp_path: Path,
) -> None:
    """An event stored before payloads were limited to MAX_NESTING levels, nested one level less deep
    than the JSON encoder takes: its envelope (the body) is one level deeper, so preparing the request
    raises. Each attempt records that, and the delivery follows the retry schedule to FAILED instead of
    its job failing again and again."""
    app = application(tmp_path, retry_schedule="0.1")
    principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
    app.create_webhook(
        principal, WebhookSpec("deep", ("job.event",), UNREACHABLE), active=True, allow_duplicate=True
    )
    app.follower.catch_up()
    deep: dict[str, object] = {}
    for _ in range(253):
        deep = {"a": deep}
    # Saved as it was before the limit: publishing refuses it now.
    stored = Event(principal.organization_id, "job.event", deep, utcnow(), None, principal.actor)
    app.save(stored)
    [[delivery_id]] = app.fan_out_many([stored.id])

    async def attempts() -> list[Outcome]:
        jobs = Jobs(app, send=None, limiter=LocalRateLimiter(), slots=HoldingSlots())  # type: ignore[arg-type]
        outcomes = [await jobs.deliver(delivery_id)]
        await asyncio.sleep(0.15)
        return [*outcomes, await jobs.deliver(delivery_id)]

    try:
        with structlog.testing.capture_logs() as logged:
            outcomes = asyncio.run(attempts())
        delivery = cast(Delivery, app.repository.get(delivery_id))
    finally:
        app.close()
    assert outcomes == [DONE, DONE]
    assert [entry["delivery_id"] for entry in logged if entry["log_level"] == "warning"] == [
        str(delivery_id)
    ] * 2
    assert delivery.status == DeliveryStatus.FAILED
    assert [(a.number, a.status_code, a.error) for a in delivery.attempts] == [
        (1, None, "the request could not be made: TypeError"),
        (2, None, "the request could not be made: TypeError"),
    ]


def test_a_delivery_whose_record_cannot_be_read_is_given_up_after_a_few_runs_not_retried_forever(
    tmp_path: Path,
) -> None:
    """Its job raises before there is a delivery to record the failure into: rerun by the queue and
    queued again by every sweep, it is prepared MAX_TRIES times at most, and given up once, logged."""
    app = application(tmp_path)
    damaged = uuid4()
    app.recorder.insert_events(
        [StoredEvent(damaged, 1, get_topic(Delivery.Created), b"not what was written")]
    )
    prepared: list[UUID] = []
    prepare = app.prepare_deliveries

    def counted(jobs: Sequence[tuple[UUID, int | None]]) -> list[Prepared]:
        prepared.extend(delivery_id for delivery_id, _ in jobs)
        return prepare(jobs)

    async def runs(count: int) -> list[BaseException | Outcome]:
        jobs = Jobs(app, send=None, limiter=LocalRateLimiter(), slots=HoldingSlots())  # type: ignore[arg-type]
        outcomes: list[BaseException | Outcome] = []
        for _ in range(count):
            try:
                outcomes.append(await jobs.deliver(damaged))
            except Exception as error:
                outcomes.append(error)
        return outcomes

    app.prepare_deliveries = counted  # type: ignore[method-assign]
    try:
        with structlog.testing.capture_logs() as logged:
            outcomes = asyncio.run(runs(10))
    finally:
        app.close()
    assert [type(o) for o in outcomes[: MAX_TRIES - 1]] == [MapperDeserialisationError] * (MAX_TRIES - 1)
    assert outcomes[MAX_TRIES - 1 :] == [DONE] * (10 - MAX_TRIES + 1)
    assert prepared == [damaged] * MAX_TRIES
    given_up = [entry for entry in logged if "given up" in entry["event"]]
    assert [(entry["id"], entry["tries"]) for entry in given_up] == [(str(damaged), MAX_TRIES)]


def test_one_webhook_gets_at_most_half_of_serves_sends() -> None:
    assert embedded_share(64) == PER_WEBHOOK == 32
    assert embedded_share(1_000) == PER_WEBHOOK
    assert embedded_share(16) == 8
    assert embedded_share(1) == 1


def busy_webhook_outcomes(directory: Path, answer_seconds: float, count: int) -> tuple[list[Outcome], int]:
    """`count` deliver jobs started at once for one webhook with 2 slots, as a worker runs them
    (`HoldingSlots`): what each job answered, and the most sends in flight at once."""
    app = application(directory)
    in_flight, peak = 0, 0

    async def answer(_: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(answer_seconds)
        in_flight -= 1
        return web.Response(text="ok")

    async def scenario() -> list[Outcome]:
        async with target(answer) as url:
            deliveries = deliveries_to(app, url, count)
            sender = Sender(allow_private_targets=True, clock=utcnow)
            await sender.start()
            jobs = Jobs(app, sender.send, LocalRateLimiter(), HoldingSlots(per_webhook=2))
            try:
                return await asyncio.gather(*(jobs.deliver(d) for d in deliveries))
            finally:
                await sender.close()

    try:
        return asyncio.run(scenario()), peak
    finally:
        app.close()


def test_a_workers_job_for_a_busy_webhook_takes_a_slot_that_frees_soon(tmp_path: Path) -> None:
    """Put back in Redis, a job costs a worker more than its delivery: to a target that answers within
    SLOT_HOLD, jobs beyond the webhook's slots wait for a send to end instead."""
    outcomes, peak = busy_webhook_outcomes(tmp_path, SLOT_HOLD / 10, 4)
    assert outcomes == [DONE] * 4
    assert peak == 2


def test_a_workers_job_for_a_webhook_whose_sends_do_not_end_is_put_back(tmp_path: Path) -> None:
    outcomes, peak = busy_webhook_outcomes(tmp_path, SLOT_HOLD * 6, 3)
    assert sorted(outcomes, key=str) == [Busy(BUSY_WAIT), DONE, DONE]  # Busy: its place is kept
    assert peak == 2


def test_a_workers_job_holds_its_webhooks_slot_only_while_it_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's jobs for a quick webhook are prepared while its slots send: none of the webhook's
    slots is held by a job that is only being prepared (held then, they stood idle most of the time)."""
    app = application(tmp_path)
    held_while_preparing: list[int] = []
    in_flight, peak = 0, 0

    async def answer(_: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(SLOT_HOLD / 10)
        in_flight -= 1
        return web.Response(text="ok")

    deliveries: list[UUID] = []

    async def scenario() -> list[Outcome]:
        async with target(answer) as url:
            deliveries.extend(deliveries_to(app, url, 6))
            sender = Sender(allow_private_targets=True, clock=utcnow)
            await sender.start()
            slots = HoldingSlots(per_webhook=2)
            jobs = Jobs(app, sender.send, LocalRateLimiter(), slots)
            prepare = app.prepare_deliveries

            def watched(batch: Sequence[tuple[UUID, int | None]]) -> list[Prepared]:
                held_while_preparing.append(sum(slots._webhooks.values()))
                return prepare(batch)

            monkeypatch.setattr(app, "prepare_deliveries", watched)
            try:
                return await asyncio.gather(*(jobs.deliver(d) for d in deliveries))
            finally:
                await sender.close()

    try:
        assert asyncio.run(scenario()) == [DONE] * 6
        assert held_while_preparing
        assert set(held_while_preparing) == {0}
        assert peak == 2
        assert statuses(app, deliveries) == [DeliveryStatus.SUCCEEDED] * 6
    finally:
        app.close()
