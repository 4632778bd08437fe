"""The composition root: builds the store, the read model, the application, the queues and the gateway
of a process, and hands them to `hookline.runtime`, which runs them."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from arq.connections import ArqRedis, RedisSettings
from eventsourcing.persistence import PersistenceError
from opentelemetry.trace import Tracer
from prometheus_client import generate_latest
from redis.asyncio import Redis
from starlette.applications import Starlette

from domain.application import Hookline, Publishing
from domain.operations import parse_thresholds
from domain.retry import DEFAULT_SCHEDULE, RetryPolicy, parse_schedule
from domain.service.publishing import Published
from domain.targets import IPAddress
from domain.views import SweepViews
from gateway.app import create_app
from gateway.live import LiveUpdates
from gateway.usage import KeyUsage
from hookline import __version__, runtime
from hookline.keys import store_key
from hookline.metrics import Metrics
from hookline.runtime import SWEEP_BACKLOG, Liveness, settle_heap, sweeping
from hookline.settings import Settings
from hookline.tracing import tracer_from_env
from store.operations import OperationsQueries
from store.projectors import last_update_key
from store.readmodel import ReadModel
from store.storage import open_storage
from store.usage import KeyUsageTable
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


def utcnow() -> datetime:
    return datetime.now(UTC)


def store_env(settings: Settings) -> dict[str, str]:
    env = {
        "CIPHER_TOPIC": "store.cipher:KeyedAESCipher",
        "COMPRESSOR_TOPIC": "store.compressor:PassThroughZlibCompressor",
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


@dataclass(frozen=True)
class Opened:
    """A process's application and the read model it was given, typed as the store keeps it: the
    runtime follows the log with it."""

    app: Hookline
    read_model: ReadModel


def open_application(settings: Settings) -> Opened:
    """The store, then the read model over it, then the application on both."""
    schedule = parse_schedule(settings.retry_schedule) if settings.retry_schedule else DEFAULT_SCHEDULE
    env = store_env(settings)
    for attempt in range(1, STARTUP_TRIES + 1):
        try:
            storage = open_storage(Hookline.name, env)
            read_model = ReadModel(
                storage.recorder, storage.mapper, verify_reuse_seconds=settings.audit_verify_reuse_seconds
            )
            app = Hookline(
                storage,
                read_model.queries,
                read_model,
                clock=utcnow,
                random_bytes=os.urandom,
                resolve=resolve_host,
                allow_private_targets=settings.allow_private_targets,
                user_agent=f"Hookline/{__version__}",
                retry_policy=RetryPolicy(schedule),
                max_payload_bytes=settings.max_payload_bytes,
                max_rendered_bytes=settings.max_rendered_bytes,
                rand=random.random,
                failing_thresholds=parse_thresholds(settings.failing_thresholds),
            )
            return Opened(app, read_model)
        except PersistenceError:
            # Processes starting together on a new PostgreSQL database race to create the store's
            # tables (CREATE TABLE IF NOT EXISTS is not safe under concurrency there): try again.
            if attempt == STARTUP_TRIES:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def build_application(settings: Settings) -> Hookline:
    return open_application(settings).app


def build_sender(settings: Settings, connections: int = DELIVERY_CONNECTIONS) -> Sender:
    return Sender(
        allow_private_targets=settings.allow_private_targets,
        clock=utcnow,
        connect_timeout=settings.connect_timeout_seconds,
        total_timeout=settings.request_timeout_seconds,
        connections=connections,
        proxy=settings.egress_proxy,
        no_proxy=settings.no_proxy_hosts,
    )


def build_gateway(settings: Settings) -> Starlette:
    """Everything `hookline serve` runs: the gateway, and (embedded) the queue that delivers."""
    app, read_model = (opened := open_application(settings)).app, opened.read_model
    views = read_model.queries
    sender = build_sender(settings)
    test_sender = build_sender(settings, connections=settings.send_test_connections)  # sendTest's own
    live = LiveUpdates(
        views.delivery_updates,
        lambda after, limit: views.delivery_updates(None, None, after, limit),
        lambda: last_update_key(read_model.position),
    )
    metrics = Metrics()
    read_model.listeners.append(metrics.count)
    usage = KeyUsageTable(read_model.db)
    liveness = Liveness()
    metrics.watch_loops(liveness)
    watched = OperationsQueries(read_model.db)
    metrics.watch_backlog(watched.oldest_due, utcnow)
    metrics.watch_failing(watched.failing_count)
    tracer = tracer_from_env()

    async def store_ready() -> bool:
        await asyncio.to_thread(app.recorder.max_notification_id)
        return True

    ready_checks = [store_ready]
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url)

        async def redis_ready() -> bool:
            return bool(await redis.ping())

        ready_checks.append(redis_ready)

    def queueing() -> AbstractAsyncContextManager[Dispatcher]:
        if settings.redis_url:
            return redis_queue(views, settings, metrics, liveness)
        return embedded_queue(app, views, settings, sender, metrics, liveness, tracer)

    # Concurrent publishEvent and POST /events requests share a transaction; nothing waits while the
    # store is idle.
    publications: Batcher[Publishing, Published] = Batcher(app.publish, max_wait=0)

    return create_app(
        app,
        test_sender.send,
        publications.submit,
        live,
        KeyUsage(usage.record, usage.last_used),
        background=lambda: runtime.serving(
            app, read_model, settings, (sender, test_sender), live, metrics, queueing, liveness
        ),
        ready_checks=ready_checks,
        stalled=liveness.stalled,
        metrics=lambda: generate_latest(metrics.registry),
        responded=metrics.responded,
        max_request_bytes=settings.max_request_bytes,
        document_cache_bytes=settings.document_cache_bytes,
        max_payload_bytes=settings.max_payload_bytes,
        tracer=tracer,
    )


@asynccontextmanager
async def embedded_queue(
    app: Hookline,
    views: SweepViews,
    settings: Settings,
    sender: Sender,
    metrics: Metrics,
    liveness: Liveness,
    tracer: Tracer | None = None,
) -> AsyncIterator[Dispatcher]:
    """The in-process queue that fans out and delivers inside `serve`: a delivery waiting for a slot
    leaves the queue, and a send that ends queues it again (see `ParkingSlots`)."""
    concurrency = settings.delivery_concurrency
    queue = InProcessQueue(concurrency=concurrency + embedded_reserve(concurrency))
    slots = ParkingSlots(queue.resume, embedded_share(concurrency), organizations=concurrency)
    jobs = Jobs(app, sender.send, LocalRateLimiter(), slots, tracer)
    metrics.queue_depth.set_function(lambda: queue.depth)
    # A consumer goes round at least once a send's timeout: a job holds it about that long at most.
    every = settings.request_timeout_seconds
    async with queue.running(jobs.run, ticked=liveness.watch("consumer", every), tick_every=every):
        dispatcher = Dispatcher(queue, views)

        # (The queue holds its jobs until they run: what waits in it now is not lost.)
        async def backlogged() -> bool:
            return queue.backlog > SWEEP_BACKLOG

        async with sweeping(dispatcher, settings.sweep_seconds, skip=backlogged, liveness=liveness):
            yield dispatcher


@asynccontextmanager
async def redis_queue(
    views: SweepViews, settings: Settings, metrics: Metrics, liveness: Liveness
) -> AsyncIterator[Dispatcher]:
    """Jobs go to Redis for `hookline worker`; a sweeper re-reads the store for what got lost."""
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
        async with sweeping(dispatcher, settings.sweep_seconds, measure, skip=backlogged, liveness=liveness):
            yield dispatcher
    finally:
        await queue.flushed()
        await redis.aclose()


def worker_settings(settings: Settings) -> dict[str, Any]:
    """What `hookline worker` gives arq: the jobs, and resources opened and closed with the worker."""
    assert settings.redis_url

    async def startup(ctx: dict[str, Any]) -> None:
        opened = await asyncio.to_thread(open_application, settings)
        app = opened.app
        sender = build_sender(settings)
        await sender.start()
        limiter = RedisRateLimiter(ctx["redis"])
        # What a fan-out creates here is queued from here, at once (see workers.dispatch).
        queue = ArqQueue(ctx["redis"], asyncio.get_running_loop())
        app.saved_listeners.append(Dispatcher(queue, opened.read_model.queries).recorded)
        # A job waiting for a slot holds its own a moment, else goes back to Redis (see HoldingSlots).
        slots = HoldingSlots(worker_share(settings.worker_jobs), worker_organizations(settings.worker_jobs))
        jobs = Jobs(app, sender.send, limiter, slots, tracer_from_env())
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
