"""Wiring: builds the store, the application, its read models and the background work of a process."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import structlog
import uvloop
from arq.connections import ArqRedis, RedisSettings
from eventsourcing.persistence import PersistenceError
from prometheus_client import generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette

from domain.application import Hookline
from domain.events import Publication
from domain.retry import DEFAULT_SCHEDULE, RetryPolicy, parse_schedule
from domain.roles import Principal
from domain.targets import IPAddress
from gateway.app import create_app
from gateway.live import LiveUpdates
from hookline import __version__
from hookline.keys import store_key
from hookline.metrics import Metrics
from hookline.settings import Settings
from store.readmodel import SQLViews
from workers import arq_jobs
from workers.arq_queue import ArqQueue
from workers.batching import Batcher
from workers.dispatch import Dispatcher
from workers.inprocess import InProcessQueue
from workers.jobs import Jobs
from workers.ratelimit import LocalRateLimiter, RedisRateLimiter
from workers.sender import Sender
from workers.slots import (
    HoldingSlots,
    ParkingSlots,
    embedded_reserve,
    embedded_share,
    worker_organizations,
    worker_share,
)

log = structlog.get_logger("hookline")

STARTUP_TRIES = 5
DELIVERY_CONNECTIONS = 256  # a process's connections for deliveries, at most
WORKER_DRAIN_SECONDS = 20  # on SIGTERM a worker takes no new job and lets sends in flight finish
SWEEP_BACKLOG = 500  # no sweep while more jobs than this are due and wait for the queue (see `sweeping`)
# Woken from idle by a save, the log follower waits this long so that the saves that follow go in
# its batch: at a steady 200 events/s each delivery's four saves were applied one or two at a time,
# each batch its own transaction.
FOLLOW_GATHER = 0.01
YOUNG_GC_THRESHOLD = 10_000  # allocations between collections of the youngest generation (CPython: 700)


def settle_heap() -> int:
    """Once a process has started: what exists now (modules, the GraphQL schema, the application)
    lives as long as the process, so the cycle collector stops going through it again and again
    (gc.freeze), and it collects the youngest generation every YOUNG_GC_THRESHOLD allocations. In
    bench.stages, two full collections of ~126 000 objects took 76 ms per 3 000 deliveries, and all
    collections together 98 ms; with start-up frozen and the threshold raised, 4.5 ms. Returns how
    many objects were frozen."""
    gc.collect()  # start-up's garbage is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
    return gc.get_freeze_count()


def utcnow() -> datetime:
    return datetime.now(UTC)


def store_env(settings: Settings) -> dict[str, str]:
    env = {
        "CIPHER_TOPIC": "store.cipher:KeyedAESCipher",
        "TRANSCODER_TOPIC": "store.transcoder:FastJSONTranscoder",
    }
    parts = urlsplit(settings.database_url)
    if parts.scheme in ("postgresql", "postgres"):
        env.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": "store.postgres:BinaryInsertRecorder",
                "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "hookline",
                "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_POOL_SIZE": str(settings.database_pool_size),
                "POSTGRES_MAX_OVERFLOW": str(settings.database_pool_size),
            }
        )
        return {**env, "CIPHER_KEY": store_key(settings, env)}
    path = settings.sqlite_path
    if path is None:
        raise ValueError("HOOKLINE_DATABASE_URL must start with sqlite:/// or postgresql://")
    path.parent.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    )
    return {**env, "CIPHER_KEY": store_key(settings, env)}


def resolve_host(host: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise LookupError(host) from error
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def build_application(settings: Settings) -> Hookline:
    schedule = parse_schedule(settings.retry_schedule) if settings.retry_schedule else DEFAULT_SCHEDULE
    env = store_env(settings)
    for attempt in range(1, STARTUP_TRIES + 1):
        try:
            app = Hookline(
                env,
                clock=utcnow,
                random_bytes=os.urandom,
                resolve=resolve_host,
                allow_private_targets=settings.allow_private_targets,
                user_agent=f"Hookline/{__version__}",
                retry_policy=RetryPolicy(schedule),
                max_payload_bytes=settings.max_payload_bytes,
                max_rendered_bytes=settings.max_rendered_bytes,
                rand=random.random,
            )
            app.views = SQLViews(app, verify_reuse_seconds=settings.audit_verify_reuse_seconds)
            return app
        except PersistenceError:
            # Processes starting together on a new PostgreSQL database race to create the store's
            # tables (CREATE TABLE IF NOT EXISTS is not safe under concurrency there): try again.
            if attempt == STARTUP_TRIES:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def build_sender(settings: Settings, connections: int = DELIVERY_CONNECTIONS) -> Sender:
    return Sender(
        allow_private_targets=settings.allow_private_targets,
        clock=utcnow,
        connect_timeout=settings.connect_timeout_seconds,
        total_timeout=settings.request_timeout_seconds,
        connections=connections,
    )


def build_gateway(settings: Settings) -> Starlette:
    """Everything `hookline serve` runs: the gateway, and (embedded) the queue that delivers."""
    app = build_application(settings)
    sender = build_sender(settings)
    test_sender = build_sender(settings, connections=settings.send_test_connections)  # sendTest's own
    views = app.views
    assert isinstance(views, SQLViews)
    live = LiveUpdates(
        views.delivery_updates,
        lambda after, limit: views.delivery_updates(None, None, after, limit),
        lambda: views.position,
    )
    metrics = Metrics()
    views.listeners.append(metrics.count)

    async def store_ready() -> bool:
        await asyncio.to_thread(app.recorder.max_notification_id)
        return True

    ready_checks = [store_ready]
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url)

        async def redis_ready() -> bool:
            return bool(await redis.ping())

        ready_checks.append(redis_ready)

    # Concurrent publishEvent requests share a transaction; nothing waits while the store is idle.
    publications: Batcher[tuple[Principal, Publication], tuple[UUID, bool]] = Batcher(
        app.publish_each, max_wait=0
    )

    async def publish(principal: Principal, publication: Publication) -> tuple[UUID, bool]:
        return await publications.submit((principal, publication))

    return create_app(
        app,
        test_sender.send,
        publish,
        live,
        background=lambda: serve_background(app, settings, sender, test_sender, live, metrics),
        ready_checks=ready_checks,
        metrics=lambda: generate_latest(metrics.registry),
        max_request_bytes=settings.max_request_bytes,
        document_cache_bytes=settings.document_cache_bytes,
    )


@asynccontextmanager
async def serve_background(
    app: Hookline,
    settings: Settings,
    sender: Sender,
    test_sender: Sender,
    live: LiveUpdates,
    metrics: Metrics,
) -> AsyncIterator[None]:
    """Inside `serve`: follow the log (read models, live updates) and, when embedded, deliver."""
    views = app.views
    assert isinstance(views, SQLViews)
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def saved(_: object) -> None:
        loop.call_soon_threadsafe(wake.set)

    views.listeners.append(lambda _: live.notify())
    app.saved_listeners += [views.recorded, saved]
    await sender.start()
    await test_sender.start()
    forwarding = asyncio.create_task(live.run())
    try:
        queueing = embedded_queue(app, settings, sender, metrics)
        if settings.redis_url:
            queueing = redis_queue(app, settings, metrics)
        async with queueing as dispatcher:
            metrics.watch_lag(lambda: (app.recorder.max_notification_id() or 0) - views.position)
            views.verifier.verified.append(metrics.verified)
            views.listeners.append(dispatcher)
            app.saved_listeners.append(dispatcher.recorded)
            await asyncio.to_thread(views.catch_up)
            await asyncio.to_thread(dispatcher.recover, views)
            # Workers' writes do not wake this process: in distributed mode it looks more often.
            idle = 0.1 if settings.redis_url else 0.5
            follower = asyncio.create_task(follow(views, wake, idle))
            watchdog = asyncio.create_task(disable_failing(app, settings))
            log.info("start-up objects frozen for the cycle collector", objects=settle_heap())
            try:
                yield
            finally:
                app.saved_listeners.remove(dispatcher.recorded)
                follower.cancel()
                watchdog.cancel()
                await asyncio.gather(follower, watchdog, return_exceptions=True)
    finally:
        forwarding.cancel()
        await asyncio.gather(forwarding, return_exceptions=True)
        await sender.close()
        await test_sender.close()


@asynccontextmanager
async def embedded_queue(
    app: Hookline, settings: Settings, sender: Sender, metrics: Metrics
) -> AsyncIterator[Dispatcher]:
    """The in-process queue that fans out and delivers inside `serve`: a delivery waiting for a slot
    leaves the queue, and a send that ends queues it again (see `ParkingSlots`)."""
    concurrency = settings.delivery_concurrency
    queue = InProcessQueue(concurrency=concurrency + embedded_reserve(concurrency))
    slots = ParkingSlots(queue.resume, embedded_share(concurrency), organizations=concurrency)
    jobs = Jobs(app, sender.send, LocalRateLimiter(), slots)
    views = app.views
    assert isinstance(views, SQLViews)
    metrics.queue_depth.set_function(lambda: queue.depth)
    async with queue.running(jobs.run):
        dispatcher = Dispatcher(queue, views)

        # (The queue holds its jobs until they run: what waits in it now is not lost.)
        async def backlogged() -> bool:
            return queue.backlog > SWEEP_BACKLOG

        async with sweeping(dispatcher, views, settings, skip=backlogged):
            yield dispatcher


@asynccontextmanager
async def redis_queue(app: Hookline, settings: Settings, metrics: Metrics) -> AsyncIterator[Dispatcher]:
    """Jobs go to Redis for `hookline worker`; a sweeper re-reads the store for what got lost."""
    views = app.views
    assert isinstance(views, SQLViews)
    assert settings.redis_url
    redis = ArqRedis.from_url(settings.redis_url)
    queue = ArqQueue(redis, asyncio.get_running_loop())
    dispatcher = Dispatcher(queue, views)

    async def measure() -> None:
        metrics.queue_depth.set(await queue.depth())

    async def backlogged() -> bool:
        try:
            return await queue.due() > SWEEP_BACKLOG
        except Exception:  # Redis down: the sweep finds that out, and says so
            return False

    try:
        async with sweeping(dispatcher, views, settings, measure, skip=backlogged):
            yield dispatcher
    finally:
        await queue.flushed()
        await redis.aclose()


@asynccontextmanager
async def sweeping(
    dispatcher: Dispatcher,
    views: SQLViews,
    settings: Settings,
    after: Callable[[], Awaitable[None]] | None = None,
    skip: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[None]:
    """Every HOOKLINE_SWEEP_SECONDS, queue again what the store says is due and not done (a job
    lost from Redis, a worker killed mid-send, a job whose write failed).

    A sweep is skipped when `skip` says so: while the queue works through a backlog of due jobs, a
    sweep would mostly name them again, reading and submitting every one of them (0.03-0.13 s of
    `serve`'s CPU a sweep during a 20 000-event burst to two workers, growing with the backlog); what
    was lost meanwhile is queued by the first sweep after the backlog."""

    async def sweep() -> None:
        while True:
            await asyncio.sleep(settings.sweep_seconds)
            if skip is not None and await skip():
                continue
            try:
                due = utcnow() + timedelta(seconds=settings.sweep_seconds)
                await asyncio.to_thread(dispatcher.recover, views, due)
                if after is not None:
                    await after()
            except Exception:
                log.exception("sweeping the store for lost jobs failed; trying again")

    sweeper = asyncio.create_task(sweep())
    try:
        yield
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)


def supervise_worker(run: Callable[[], object], backoff: float = 1.0, longest: float = 30.0) -> None:
    """Runs the arq worker again whenever Redis goes away under it (arq stops on a lost connection);
    a stop by signal ends it. The store keeps what the queue lost: the sweeper queues it again."""
    wait = backoff
    while True:
        asyncio.set_event_loop(uvloop.new_event_loop())  # as uvicorn runs `serve`
        try:
            run()
            return
        except (RedisError, OSError) as error:
            log.warning("lost Redis; starting the worker again", error=str(error), in_seconds=wait)
            time.sleep(wait)
            wait = min(wait * 2, longest)


def worker_settings(settings: Settings) -> dict[str, Any]:
    """What `hookline worker` gives arq: the jobs, and resources opened and closed with the worker."""
    assert settings.redis_url

    async def startup(ctx: dict[str, Any]) -> None:
        app = await asyncio.to_thread(build_application, settings)
        sender = build_sender(settings)
        await sender.start()
        limiter = RedisRateLimiter(ctx["redis"])
        # What a fan-out creates here is queued from here, at once (see workers.dispatch).
        queue = ArqQueue(ctx["redis"], asyncio.get_running_loop())
        app.saved_listeners.append(Dispatcher(queue, app.read).recorded)
        # A job waiting for a slot holds its own a moment, else goes back to Redis (see HoldingSlots).
        slots = HoldingSlots(worker_share(settings.worker_jobs), worker_organizations(settings.worker_jobs))
        jobs = Jobs(app, sender.send, limiter, slots)
        ctx.update(app=app, sender=sender, queue=queue, jobs=jobs)
        log.info("worker ready", frozen_objects=settle_heap())

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "sender" in ctx:
            await ctx["queue"].flushed()
            await ctx["sender"].close()
            ctx["app"].close()

    return {
        "functions": arq_jobs.FUNCTIONS,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.worker_jobs,
        "job_completion_wait": WORKER_DRAIN_SECONDS,
        # arq looks for jobs when it polls (and ClaimingWorker, full, when a job ends): a job queued
        # while the worker has room waits up to this long; idle, it costs a Redis query every 20 ms.
        "poll_delay": 0.02,
        "keep_result": 0,
    }


async def disable_failing(app: Hookline, settings: Settings) -> None:
    """Switches off webhooks that have failed for HOOKLINE_DISABLE_AFTER_HOURS, checking as often as
    the sweeper runs (any gateway may; a second one finds nothing left to do)."""
    window = timedelta(hours=settings.disable_after_hours)
    while True:
        await asyncio.sleep(min(settings.sweep_seconds, max(window.total_seconds() / 4, 0.2)))
        try:
            disabled = await asyncio.to_thread(app.disable_failing_webhooks, window)
            if disabled:
                log.warning("switched off webhooks whose deliveries all failed", webhooks=disabled)
        except Exception:
            log.exception("checking for failing webhooks failed; trying again")


async def follow(
    views: SQLViews, wake: asyncio.Event, idle_seconds: float = 0.5, gather_seconds: float = FOLLOW_GATHER
) -> None:
    """Apply new notifications soon after this process saves, and at least twice a second for
    others'. Woken from idle, it lets `gather_seconds` pass first, so that what else is saved
    meanwhile goes in the same batch; when saves came in while it applied a batch, it goes on at
    once (saturated, a pause would only let the backlog grow)."""
    while True:
        if not wake.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), idle_seconds)
                await asyncio.sleep(gather_seconds)
        wake.clear()
        try:
            await asyncio.to_thread(views.catch_up)
        except Exception:
            log.exception("following the store's log failed; trying again")
            await asyncio.sleep(idle_seconds)
