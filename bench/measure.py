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
from bench.processes import cpu_seconds, postgres_backends
from bench.publisher import Publisher
from bench.receiver import ReceiverProcess, first_arrivals
from bench.report import cpu_per_delivery, ms, percentile_ms, progress

WARMUP_EVENTS = 20
STATUSES = ("PENDING", "RETRYING", "SUCCEEDED", "FAILED")
STATUS_COUNTS = (
    "{ " + " ".join(f"{s}: deliveries(status: {s}, first: 1) {{ totalCount }}" for s in STATUSES) + " }"
)
SETTLE_SECONDS = 30.0


async def measure(options: Options, receiver: ReceiverProcess, deployment: Deployment) -> dict[str, Any]:
    server = deployment.server
    connector = aiohttp.TCPConnector(limit=options.concurrency + 4)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        publisher = Publisher(session, server.url, deployment.publisher)

        # Warm-up: connections, caches, the first fan-out; waited for, and not counted.
        warmup = f"warmup-{uuid.uuid4().hex[:8]}"
        warm_started = time.monotonic()
        checked = await publisher.saturated(warmup, WARMUP_EVENTS, WARMUP_EVENTS, 1)
        if checked.errors:
            raise RuntimeError(f"warm-up publish failed: {checked.first_error}")
        warm_deadline = time.monotonic() + 60
        warm = await receiver.wait_for(
            session, warmup, WARMUP_EVENTS * options.webhooks, lambda: warm_deadline
        )
        if warm < WARMUP_EVENTS * options.webhooks:
            raise RuntimeError(f"warm-up: {warm}/{WARMUP_EVENTS * options.webhooks} arrived within 60 s")
        warmup_s = round(time.monotonic() - warm_started, 2)
        progress(f"warm-up: {WARMUP_EVENTS} events arrived in {warmup_s} s")

        run = f"run-{uuid.uuid4().hex[:8]}"
        events, expected = options.total_events, options.expected
        pids = {**deployment.pids, "receiver": receiver.pid, **deployment.service_pids}
        if deployment.database_url:  # the run's PostgreSQL backends, as one
            pids.update({f"postgres-{pid}": pid for pid in postgres_backends(deployment.database_url)})
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        bench_before = time.process_time()
        if options.rate > 0:
            progress(
                f"{run}: publishing {events} events at {options.rate:g}/s, {expected} deliveries expected"
            )
            published = await publisher.fixed_rate(run, events, options.rate, options.concurrency)
        else:
            progress(f"{run}: publishing {events} events, {expected} deliveries expected")
            published = await publisher.saturated(run, events, options.batch, options.concurrency)
        progress(f"{run}: published in {published.finished - published.started:.1f} s; waiting for arrivals")
        deadline = time.monotonic() + options.timeout
        await receiver.wait_for(session, run, expected, lambda: deadline)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        bench_cpu = time.process_time() - bench_before
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
    return {
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
        "delivery_statuses": statuses,
        "settled_s": settled,
        "warmup_s": warmup_s,
    }


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
