"""Retention benchmark: does the store stop growing once the window is full, and what does the sweep
cost deliveries?

Run from the repository root (`make bench-retention` runs the first line):

    .venv/bin/python -m bench.retention                          # embedded (SQLite), 200/s for 60 s
    .venv/bin/python -m bench.retention --mode distributed --workers 1   # PostgreSQL + Redis
    .venv/bin/python -m bench.retention --rate 50 --duration 8 --window PT3S --sizes-at 5,8  # smoke

Each run starts `hookline serve` twice (as bench.e2e deploys it: a receiver process answering 200, one
webhook), once with the organisation's retention policy `deliveries: --window` and the sweep every
--sweep-seconds, once without a policy, and publishes one 1 KiB event a request at --rate events/s for
--duration s (bench.publisher's fixed rate). At each of --sizes-at seconds after the first publish it
reads the store's size: SQLite, the file plus its -wal (os.stat); PostgreSQL, the sum of
pg_total_relation_size of the store's tables (no VACUUM: what autovacuum leaves). It also counts the
deliveries the store holds then (hl_deliveries). After the last publish it waits for every delivery.

Output, one JSON object per run on stdout: mode, rate, duration, window, per size point
{at, bytes, deliveries_held, bytes_per_delivery}, the growth between the last two points (%), and
deliveries/s (deliveries that arrived / the time from the first publish to the last arrival); then a
comparison line: the throughput with retention against without (%), and the bytes each delivery adds
to the store without retention (its growth between the last two points over the deliveries added).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.deployment import CREATE_WEBHOOK, distributed_services, embedded_services, start_workers
from bench.publisher import EVENT_TYPE, Publisher
from bench.receiver import ReceiverProcess
from harness.server import Server

SET_POLICY = "mutation($i: RetentionPolicyInput!) { setRetentionPolicy(input: $i) { deliveries } }"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.retention")
    parser.add_argument("--mode", choices=("embedded", "distributed"), default="embedded")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--window", default="PT20S")
    parser.add_argument("--sweep-seconds", type=float, default=3.0)
    parser.add_argument("--sizes-at", default="40,60")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--without", action="store_true", help="skip the run without retention")
    return parser.parse_args(argv)


def store_size(server: Server, database_url: str | None, tables: dict[str, int]) -> tuple[int, int]:
    """The store's bytes and the deliveries it holds; PostgreSQL's tables of 1 MiB or more into `tables`."""
    if database_url:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
            held = connection.execute("SELECT COUNT(*) FROM hl_deliveries").fetchone()
        tables.update({str(name): int(size) for name, size in rows if int(size) >= 1 << 20})
        return sum(int(size) for _, size in rows), int(held[0] if held else 0)
    path = server.directory / "var" / "hookline.sqlite3"
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as connection:
        held = connection.execute("SELECT COUNT(*) FROM hl_deliveries").fetchone()[0]
    return size, int(held)


async def run(options: argparse.Namespace, receiver: ReceiverProcess, retention: bool) -> dict[str, Any]:
    settings = {
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
        "HOOKLINE_LOG_LEVEL": "warning",
        "HOOKLINE_RETENTION_SWEEP_SECONDS": str(options.sweep_seconds),
    }
    distributed = options.mode == "distributed"
    services = distributed_services(settings, None) if distributed else embedded_services(settings)
    with services as (environment, _):
        server = Server(directory=Path(tempfile.mkdtemp(prefix="hookline-retention-")), env=environment)
        try:
            server.start()
            start_workers(server, options.workers if distributed else 0)
            admin, publisher_key = server.key("bench", "admin"), server.key("bench", "publisher")
            hook = {"name": "Bench", "eventTypes": [EVENT_TYPE], "targetUrl": f"{receiver.url}/hook/0"}
            server.gql(admin, CREATE_WEBHOOK, {"input": hook}).ok()
            if retention:
                server.gql(admin, SET_POLICY, {"i": {"deliveries": options.window}}).ok()
            return await measure(options, receiver, server, publisher_key, retention, environment)
        finally:
            server.stop()


async def measure(
    options: argparse.Namespace,
    receiver: ReceiverProcess,
    server: Server,
    key: str,
    retention: bool,
    environment: dict[str, str],
) -> dict[str, Any]:
    database_url = environment.get("HOOKLINE_DATABASE_URL")
    events = int(options.rate * options.duration)
    label = f"retention-{'on' if retention else 'off'}-{time.time_ns()}"
    sizes: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        publisher = Publisher(session, server.url, key, via="http")
        start = time.monotonic()
        publishing = asyncio.create_task(
            publisher.fixed_rate(label, events, options.rate, options.concurrency)
        )
        for at in [float(a) for a in options.sizes_at.split(",")]:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            tables: dict[str, int] = {}
            size, held = await asyncio.to_thread(store_size, server, database_url, tables)
            per = round(size / held) if held else None
            point = {"at": at, "bytes": size, "deliveries_held": held, "bytes_per_delivery": per}
            sizes.append({**point, "tables": tables} if tables else point)
        published = await publishing
        deadline = time.monotonic() + options.timeout
        arrived = await receiver.wait_for(session, label, events, lambda: deadline)
        records = await receiver.results(session, label)
    last = max((record[0] for record in records), default=time.time())
    elapsed = last - published.started
    growth = None
    if len(sizes) >= 2 and sizes[-2]["bytes"]:
        growth = round(100 * (sizes[-1]["bytes"] - sizes[-2]["bytes"]) / sizes[-2]["bytes"], 1)
    return {
        "mode": options.mode,
        "retention": options.window if retention else None,
        "rate": options.rate,
        "duration": options.duration,
        "sweep_seconds": options.sweep_seconds,
        "events": events,
        "delivered": arrived,
        "publish_errors": published.errors,
        "sizes": sizes,
        "growth_between_last_two_percent": growth,
        "deliveries_per_second": round(arrived / elapsed, 1) if elapsed > 0 else None,
    }


async def main(argv: list[str]) -> list[dict[str, Any]]:
    options = parse(argv)
    results = []
    with ReceiverProcess() as receiver:
        for retention in (True,) if options.without else (True, False):
            result = await run(options, receiver, retention)
            print(json.dumps(result), flush=True)
            results.append(result)
    if len(results) == 2 and results[1]["deliveries_per_second"]:
        ratio = results[0]["deliveries_per_second"] / results[1]["deliveries_per_second"]
        first, last = results[1]["sizes"][-2], results[1]["sizes"][-1]
        added = last["deliveries_held"] - first["deliveries_held"]
        marginal = round((last["bytes"] - first["bytes"]) / added) if added > 0 else None
        print(
            json.dumps(
                {
                    "throughput_with_retention_vs_without_percent": round(100 * ratio, 1),
                    # what each delivery adds to a store that keeps everything (between the last two points)
                    "marginal_bytes_per_delivery_without_retention": marginal,
                }
            )
        )
    return results


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
