"""What runs for the life of a process, once `hookline.wiring` has built it: the log follower, the
sweeper, the retention sweep, the watchdog that switches failing webhooks off, the worker's supervisor,
the heap's tuning once start-up is done, and the liveness of the loops that must never die."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
import uvloop
from redis.exceptions import RedisError

from domain.application import Hookline
from domain.views import Following
from gateway.live import LiveUpdates
from hookline.metrics import Metrics
from hookline.settings import Settings
from store.readmodel import ReadModel
from store.retention import RetentionStore, sweep
from workers.dispatch import Dispatcher
from workers.sender import Sender

log = structlog.get_logger("hookline")

SWEEP_BACKLOG = 500  # no sweep while more jobs than this are due and wait for the queue (see `sweeping`)
# Woken from idle by a save, the log follower waits this long so that the saves that follow (a
# delivery's are several, close together) are applied in its batch, one transaction, not one each.
FOLLOW_GATHER = 0.01
YOUNG_GC_THRESHOLD = 10_000  # allocations between collections of the youngest generation (CPython: 700)
# A loop is stalled when it has not ticked for this many of its intervals (readiness answers 503).
STALLED_AFTER = 3
# The shortest interval a loop is held to: a loop that looks ten times a second is not stalled by a
# pause of half a second (a collection, a busy machine).
SHORTEST_TICK = 1.0


class Liveness:
    """When each of a process's never-ending loops last went round: a loop ticks once per turn
    (whether its work succeeded or failed and was logged), and one that has not ticked for
    STALLED_AFTER times its interval is stalled: hung on a lock or a call that never returns, or
    dead of an exception nothing caught. Ticks may come from any thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.intervals: dict[str, float] = {}
        self.ticks: dict[str, float] = {}

    def watch(self, loop: str, interval: float) -> Callable[[], None]:
        """Starts watching a loop that goes round at least every `interval` seconds; its tick."""
        self.intervals[loop] = max(interval, SHORTEST_TICK)
        self.ticks[loop] = self.clock()
        return lambda: self.tick(loop)

    def tick(self, loop: str) -> None:
        self.ticks[loop] = self.clock()

    def since_tick(self, loop: str) -> float:
        return self.clock() - self.ticks[loop]

    def is_stalled(self, loop: str) -> bool:
        return self.since_tick(loop) > STALLED_AFTER * self.intervals[loop]

    def stalled(self) -> list[str]:
        """Each stalled loop, as a sentence naming it."""
        return [
            f"{loop} has not ticked for {self.since_tick(loop):.1f} s"
            f" ({STALLED_AFTER} × its interval of {self.intervals[loop]:g} s)"
            for loop in list(self.intervals)
            if self.is_stalled(loop)
        ]


Queueing = Callable[[], AbstractAsyncContextManager[Dispatcher]]
"""Opens the queue that fans out and delivers (in this process, or through Redis) and its sweeper."""


def settle_heap() -> int:
    """Once a process has started: what exists now (modules, the GraphQL schema, the application)
    lives as long as the process, so the cycle collector stops going through it again and again
    (gc.freeze), and it collects the youngest generation less often, as a process that allocates
    as much per delivery as this one fills it many times a second. Returns how many objects were
    frozen."""
    gc.collect()  # start-up's garbage is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)
    return gc.get_freeze_count()


@asynccontextmanager
async def serving(
    app: Hookline,
    read_model: ReadModel,
    settings: Settings,
    senders: tuple[Sender, Sender],
    live: LiveUpdates,
    metrics: Metrics,
    queueing: Queueing,
    liveness: Liveness,
) -> AsyncIterator[None]:
    """Inside `serve`: follow the log (read models, live updates) and run the queue that `queueing`
    opens (the deliveries' sender and sendTest's are opened and closed with it); the follower and
    the watchdog tick `liveness`."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def saved(_: object) -> None:
        loop.call_soon_threadsafe(wake.set)

    read_model.listeners.append(lambda _: live.notify())
    app.saved_listeners += [read_model.recorded, saved]
    for sender in senders:
        await sender.start()
    forwarding = asyncio.create_task(live.run())
    try:
        async with queueing() as dispatcher:
            metrics.watch_lag(lambda: (app.recorder.max_notification_id() or 0) - read_model.position)
            metrics.watch_follower(read_model.work)
            read_model.verifier.verified.append(metrics.verified)
            read_model.listeners.append(dispatcher)
            app.saved_listeners.append(dispatcher.recorded)
            await asyncio.to_thread(read_model.catch_up)
            await asyncio.to_thread(dispatcher.recover)
            # Workers' writes do not wake this process: in distributed mode it looks more often.
            idle = 0.1 if settings.redis_url else 0.5
            follower_ticked = liveness.watch("follower", idle)
            read_model.listeners.append(lambda _: follower_ticked())  # a long catch-up, batch by batch
            follower = asyncio.create_task(follow(read_model, wake, idle, tick=follower_ticked))
            watchdog = asyncio.create_task(disable_failing(app, settings, liveness))
            retention = asyncio.create_task(
                sweep_retention(
                    partial(
                        sweep,
                        RetentionStore(read_model.db),
                        app.retention_policies,
                        erase=read_model.queries.erase_events,
                    ),
                    settings.retention_sweep_seconds,
                    liveness,
                )
            )
            log.info("start-up objects frozen for the cycle collector", objects=settle_heap())
            try:
                yield
            finally:
                app.saved_listeners.remove(dispatcher.recorded)
                follower.cancel()
                watchdog.cancel()
                retention.cancel()
                await asyncio.gather(follower, watchdog, retention, return_exceptions=True)
    finally:
        forwarding.cancel()
        await asyncio.gather(forwarding, return_exceptions=True)
        for sender in senders:
            await sender.close()


@asynccontextmanager
async def sweeping(
    dispatcher: Dispatcher,
    every: float,
    after: Callable[[], Awaitable[None]] | None = None,
    skip: Callable[[], Awaitable[bool]] | None = None,
    liveness: Liveness | None = None,
) -> AsyncIterator[None]:
    """Every `every` seconds (HOOKLINE_SWEEP_SECONDS), queue again what the store says is due and
    not done (a job lost from Redis, a worker killed mid-send, a job whose write failed).

    A sweep is skipped when `skip` says so: while the queue works through a backlog of due jobs, a
    sweep would mostly name them again, reading and submitting every one of them, at a cost that
    grows with the backlog; what was lost meanwhile is queued by the first sweep after it."""
    ticked = (liveness or Liveness()).watch("sweeper", every)

    async def sweep() -> None:
        while True:
            ticked()
            await asyncio.sleep(every)
            if skip is not None and await skip():
                continue
            try:
                due = datetime.now(UTC) + timedelta(seconds=every)
                await asyncio.to_thread(dispatcher.recover, due)
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


def serve_readiness(liveness: Liveness, host: str, port: int) -> ThreadingHTTPServer:
    """A worker's `/readyz` on a thread of its own (it answers also while arq is down and being
    started again): 503 naming each stalled loop, as the gateway's does, else 200."""

    class Readiness(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stalled = liveness.stalled()
            if self.path != "/readyz":
                status, text = 404, "not found"
            elif stalled:
                status, text = 503, "not ready: " + "; ".join(stalled)
            else:
                status, text = 200, "ready"
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds are not worth a log line each."""

    server = ThreadingHTTPServer((host, port), Readiness)
    threading.Thread(target=server.serve_forever, name="readiness", daemon=True).start()
    return server


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


async def disable_failing(app: Hookline, settings: Settings, liveness: Liveness) -> None:
    """Switches off webhooks that have failed for HOOKLINE_DISABLE_AFTER_HOURS, checking as often as
    the sweeper runs (any gateway may; a second one finds nothing left to do)."""
    window = timedelta(hours=settings.disable_after_hours)
    every = min(settings.sweep_seconds, max(window.total_seconds() / 4, 0.2))
    ticked = liveness.watch("watchdog", every)
    while True:
        ticked()
        await asyncio.sleep(every)
        try:
            disabled = await asyncio.to_thread(app.disable_failing_webhooks, window)
            if disabled:
                log.warning("switched off webhooks whose deliveries all failed", webhooks=disabled)
        except Exception:
            log.exception("checking for failing webhooks failed; trying again")


async def follow(
    follower: Following,
    wake: asyncio.Event,
    idle_seconds: float = 0.5,
    gather_seconds: float = FOLLOW_GATHER,
    tick: Callable[[], None] = lambda: None,
) -> None:
    """Apply new notifications soon after this process saves, and at least twice a second for
    others'. Woken from idle, it lets `gather_seconds` pass first, so that what else is saved
    meanwhile goes in the same batch; when saves came in while it applied a batch, it goes on at
    once (saturated, a pause would only let the backlog grow). It `tick`s once per turn."""
    while True:
        tick()
        if not wake.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), idle_seconds)
                await asyncio.sleep(gather_seconds)
        wake.clear()
        try:
            await asyncio.to_thread(follower.catch_up)
        except Exception:
            log.exception("following the store's log failed; trying again")
            await asyncio.sleep(idle_seconds)


async def sweep_retention(
    sweep: Callable[[Callable[[], None]], object], every: float, liveness: Liveness
) -> None:
    """Every `every` seconds (HOOKLINE_RETENTION_SWEEP_SECONDS), removes what retention policies no
    longer keep (`sweep`, in a thread, ticking between its batches); ticks as the `retention` loop."""
    ticked = liveness.watch("retention", every)
    while True:
        ticked()
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(sweep, ticked)
        except Exception:
            log.exception("the retention sweep failed; trying again")
