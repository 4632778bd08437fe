"""One measured end-to-end run against a deployed Hookline: a warm-up, the publishing, the wait for
arrivals, and the figures taken from the receiver's records, /proc and the read model."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any

import aiohttp

from bench.deployment import Deployment
from bench.options import Options
from bench.processes import cpu_seconds, cpu_until_quiet, postgres_backends, wait_idle
from bench.publisher import Published, Publisher
from bench.receiver import ReceiverProcess, first_arrivals
from bench.report import cpu_per_delivery, ms, percentile_ms, progress

WARMUP_EVENTS = 20
STATUSES = ("PENDING", "RETRYING", "SUCCEEDED", "FAILED")
STATUS_COUNTS = (
    "{ " + " ".join(f"{s}: deliveries(status: {s}, first: 1) {{ totalCount }}" for s in STATUSES) + " }"
)
SETTLE_SECONDS = 30.0


async def measure(
    options: Options, receiver: ReceiverProcess, deployment: Deployment
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's figures, and the store's footprint before its measured events."""
    server = deployment.server
    connector = aiohttp.TCPConnector(limit=options.in_flight_requests + 4)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        publisher = Publisher(session, server.url, deployment.publisher, options.via)

        # Warm-up: connections, caches, the first fan-out; waited for, and not counted. One event a
        # request opens every connection the run keeps alive and caches publishEvent's document.
        warmup = f"warmup-{uuid.uuid4().hex[:8]}"
        warm_started = time.monotonic()
        if options.publishing == "batches":
            warmup_events = WARMUP_EVENTS
            checked = await publisher.saturated(warmup, warmup_events, warmup_events, 1)
        else:
            warmup_events = max(WARMUP_EVENTS, options.in_flight_requests)
            checked = await publisher.per_request(warmup, warmup_events, options.in_flight_requests)
        if checked.errors:
            raise RuntimeError(f"warm-up publish failed: {checked.first_error}")
        warm_deadline = time.monotonic() + 60
        warm_expected = warmup_events * options.webhooks
        warm = await receiver.wait_for(session, warmup, warm_expected, lambda: warm_deadline)
        if warm < warm_expected:
            raise RuntimeError(f"warm-up: {warm}/{warm_expected} arrived within 60 s")
        warmup_s = round(time.monotonic() - warm_started, 2)
        progress(f"warm-up: {warmup_events} events, {warm_expected} arrived in {warmup_s} s")

        # The warm-up's trailing work (fan-out, the follower's projections) is neither timed nor
        # counted in what the measured events add to the store.
        wait_idle(list(deployment.pids.values()))
        store_before = deployment.footprint(at_rest=False)
        run = f"run-{uuid.uuid4().hex[:8]}"
        events, expected = options.total_events, options.expected
        pids = {**deployment.pids, "receiver": receiver.pid, **deployment.service_pids}
        if deployment.database_url:  # the run's PostgreSQL backends, as one
            pids.update({f"postgres-{pid}": pid for pid in postgres_backends(deployment.database_url)})
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        bench_before = time.process_time()
        progress(f"{run}: publishing {events} events ({options.publishing}), {expected} deliveries expected")
        published = await publish(options, publisher, run)
        serve_published = cpu_seconds(pids["serve"])
        progress(f"{run}: published in {published.finished - published.started:.1f} s; waiting for arrivals")
        deadline = time.monotonic() + options.timeout
        await receiver.wait_for(session, run, expected, lambda: deadline)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        bench_cpu = time.process_time() - bench_before
        serve_quiet = cpu_until_quiet(pids["serve"])
        records = await receiver.results(session, run)

    first = first_arrivals(records)
    arrived = len(first)
    latencies = sorted(r[0] - r[2] for r in first.values())
    last_arrival = max((r[0] for r in first.values()), default=published.started)  # duplicates aside
    statuses, settled = delivery_statuses(deployment, last_arrival)

    duration = last_arrival - published.started
    publish_s = published.finished - published.started
    requests = sorted(published.request_seconds)
    used: dict[str, float] = defaultdict(float)
    for name, after in cpu_after.items():
        if after is not None and (before := cpu_before[name]) is not None:
            used[name.split("-")[0] if name.startswith("postgres-") else name] += after - before
    cpu = {name: round(seconds, 2) for name, seconds in used.items()}
    serve_before = cpu_before["serve"]
    figures = {
        "deliveries_expected": expected,
        "deliveries": arrived,
        "duplicates": len(records) - arrived,
        "missing": expected - arrived,
        "complete": arrived >= expected,
        "publish_errors": published.errors,
        "first_publish_error": published.first_error,
        "publish_s": round(publish_s, 3),
        "publishes_per_s": round(events / publish_s, 1) if publish_s > 0 else None,
        "publish_request_p50_ms": percentile_ms(requests, 50),
        "publish_request_p99_ms": percentile_ms(requests, 99),
        "max_schedule_lag_ms": ms(published.max_lag),
        "duration_s": round(duration, 3),
        "deliveries_per_s": round(arrived / duration, 1) if duration > 0 else None,
        "latency_p50_ms": percentile_ms(latencies, 50),
        "latency_p95_ms": percentile_ms(latencies, 95),
        "latency_p99_ms": percentile_ms(latencies, 99),
        "latency_max_ms": ms(latencies[-1] if latencies else None),
        "cpu_s": {**cpu, "bench": round(bench_cpu, 2)},
        "cpu_ms_per_delivery": cpu_per_delivery(cpu, arrived),
        "serve_cpu_ms_per_delivery": cpu_per_delivery({"serve": used["serve"]}, arrived),
        "serve_cpu_ms_per_event": ms_per(serve_before, serve_published, events),
        "serve_cpu_ms_per_event_until_quiet": ms_per(serve_before, serve_quiet, events),
        "delivery_statuses": statuses,
        "settled_s": settled,
        "warmup_s": warmup_s,
        "warmup_events": warmup_events,
    }
    return figures, store_before


async def publish(options: Options, publisher: Publisher, run: str) -> Published:
    """The measured events, published as the options say."""
    events = options.total_events
    if options.publishing == "fixed-rate":
        return await publisher.fixed_rate(run, events, options.rate, options.concurrency)
    if options.publishing == "per-request":
        return await publisher.per_request(run, events, options.in_flight)
    return await publisher.saturated(run, events, options.batch, options.concurrency)


def ms_per(before: float | None, after: float | None, count: int) -> float | None:
    """CPU milliseconds per item between two readings of a process's CPU seconds."""
    if before is None or after is None or not count:
        return None
    return round((after - before) * 1000 / count, 3)


def delivery_statuses(
    deployment: Deployment, last_arrival: float
) -> tuple[dict[str, int] | None, float | None]:
    """Deliveries by status in the read model (warm-up included), polled until none is PENDING or
    RETRYING (at most SETTLE_SECONDS), and how long after the last arrival that was (None: never)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    counts: dict[str, int] | None = None
    while True:
        answer = deployment.server.gql(deployment.admin, STATUS_COUNTS)
        if answer.errors:
            return None, None
        counts = {status: answer.data[status]["totalCount"] for status in STATUSES}
        if counts["PENDING"] == counts["RETRYING"] == 0:
            return counts, round(max(0.0, time.time() - last_arrival), 2)
        if time.monotonic() > deadline:
            return counts, None
        time.sleep(0.2)
