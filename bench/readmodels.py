"""Read-model benchmark: latency of `webhooks(first: 50)` and `deliveries(first: 50)` pages over HTTP,
and of listing 1 000 webhooks with their health.

Run from the repository root (the full size takes a few minutes, nearly all of it filling the store):

    .venv/bin/python -m bench.readmodels
    .venv/bin/python -m bench.readmodels --webhooks 200 --deliveries 2000 --requests 20   # smoke run

It fills a fresh store in a temporary directory through the application layer (aggregates built as
`create_webhook` and `fan_out` build them, saved in batches, then projected with `catch_up`), starts
the real `hookline serve` on it, and times GraphQL requests from one client, one request at a time,
the queries taking turns. `{ __typename }` against the same server is the baseline: the HTTP +
GraphQL floor, without the read model. The target is p95 < 50 ms per page query. The newest 1 000
webhooks (those listed first) also have one attempt an hour for the last 24 hours, so that each has a
full day of health: `webhooks_1000_health` times listing them, two pages of 500 with `health`, beside
`webhooks_1000`, the same pages without it. `--keep` leaves the store behind (reopen it with
HOOKLINE_SECRET_KEY=SECRET_KEY below) for profiling.

Output on stdout, JSON Lines: one line per measurement
    {"name", "n", "p50_ms", "p95_ms", "p99_ms", "max_ms", "items", "page", "p50_over_baseline_ms"}
("items": nodes in the page, "page": which page was timed, 1 = first), then one summary line
    {"summary": true, "fill_s": {...}, "server_peak_rss_mb", "target_met": {name: bool}, ...}.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from eventsourcing.domain import Aggregate
from pydantic import SecretStr

from bench.listing import HEALTH_HOURS, LISTED, LISTED_PAGE, LISTINGS, list_all
from bench.processes import peak_rss_mb
from bench.report import git_state, percentile
from domain.application import Hookline
from domain.deliveries import Attempt, Delivery
from domain.events import Event
from domain.roles import Principal, Role
from domain.signing import SECRET_BYTES, new_signing_secret
from domain.webhooks import Webhook, WebhookSpec
from harness.server import Server, server_env
from hookline.settings import Settings
from hookline.wiring import build_application

PAGE = 50
TARGET_P95_MS = 50.0
SAVE_BATCH = 500  # aggregates per app.save(): one transaction each
SUBSCRIBERS = 100  # webhooks subscribed to the published type; the rest subscribe to other types
PUBLISHED = "bench.published"
# A fixed passphrase: the store is thrown away (or kept with --keep, and then reopenable with it).
SECRET_KEY = "hookline-bench-not-a-secret"  # noqa: S105

WEBHOOK_FIELDS = "id name eventTypes targetUrl active version signingSecret createdAt"
DELIVERY_FIELDS = "id status eventType attempts { number statusCode durationMs } createdAt"
WEBHOOKS = f"""query($first: Int, $after: String) {{
  webhooks(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {WEBHOOK_FIELDS} }} }}
  }}
}}"""
DELIVERIES = f"""query($webhookId: ID, $first: Int, $after: String) {{
  deliveries(webhookId: $webhookId, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {DELIVERY_FIELDS} }} }}
  }}
}}"""
TYPENAME = "{ __typename }"


# -- filling the store ----------------------------------------------------------------------------


@dataclass
class Filled:
    key: str
    subscribed_webhook: UUID  # one with a delivery of every event, for deliveries(webhookId:)
    webhooks: int
    events: int
    deliveries: int
    attempts: int
    health_deliveries: int
    seconds: dict[str, float]


class Batches:
    """Saves aggregates SAVE_BATCH at a time, as one `app.save` each."""

    def __init__(self, app: Hookline) -> None:
        self.app = app
        self.pending: list[Aggregate] = []

    def add(self, *aggregates: Aggregate) -> None:
        self.pending.extend(aggregates)
        if len(self.pending) >= SAVE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.app.save(*self.pending)
            self.pending.clear()


def record_attempts(delivery: Delivery, n: int, now: datetime) -> int:
    """Finish every delivery, so that the server has nothing to send while it is measured.

    8 in 10 succeed at once, 1 in 10 succeeds after a 503, 1 in 10 fails for good; returns the attempts.
    """
    kind = n % 10
    if kind == 1:
        delivery.record_attempt(Attempt(1, now, 812.4, 503, None, "busy"), now + timedelta(seconds=5))
        delivery.record_attempt(Attempt(2, now, 95.1, 200, None, "ok"), None)
        return 2
    if kind == 2:
        delivery.record_attempt(Attempt(1, now, 5000.0, None, "connection refused", None), None)
        return 1
    delivery.record_attempt(Attempt(1, now, 73.6, 200, None, "ok"), None)
    return 1


def delivered(
    batches: Batches, principal: Principal, webhooks: list[Webhook], name: str, n: int, at: datetime
) -> int:
    """An event delivered to each of `webhooks`, as fan_out would, its deliveries finished at `at`
    (see `record_attempts`, from the `n`th kind on), added to `batches`; returns the attempts."""
    event = Event(
        organization_id=principal.organization_id,
        type=PUBLISHED,
        payload={"alert_name": name, "severity": "critical"},
        occurred_at=at,
        idempotency_key=None,
        actor=principal.actor,
    )
    fanned = [
        Delivery(event_id=event.id, webhook_id=w.id, organization_id=w.organization_id, event_type=PUBLISHED)
        for w in webhooks
    ]
    event.fan_out([(w.id, w.version) for w in webhooks])  # so the server finds nothing to fan out
    attempts = sum(record_attempts(delivery, n + i, at) for i, delivery in enumerate(fanned))
    batches.add(event, *fanned)
    return attempts


def fill(directory: Path, webhooks: int, deliveries: int) -> Filled:
    settings = Settings(
        database_url=f"sqlite:///{directory}/var/hookline.sqlite3",
        secret_key=SecretStr(SECRET_KEY),
        allow_private_targets=True,
    )
    app = build_application(settings)
    try:
        key = app.issue_key("bench", Role.ADMIN)
        principal = app.authenticate(key)
        org = principal.organization_id
        batches = Batches(app)
        seconds: dict[str, float] = {}

        started = time.perf_counter()
        subscribers: list[Webhook] = []
        created: list[Webhook] = []
        for i in range(webhooks):
            subscribed = i < SUBSCRIBERS
            spec = WebhookSpec(
                name=f"Bench webhook {i}",
                event_types=(PUBLISHED if subscribed else f"bench.other.{i % 10}",),
                target_url=f"https://hooks.example.com/bench/{i}",
            )
            webhook = Webhook(
                organization_id=org,
                spec=spec.to_data(),
                active=True,
                signing_secret=new_signing_secret(os.urandom(SECRET_BYTES)),
                actor=principal.actor,
            )
            if subscribed:
                subscribers.append(webhook)
            created.append(webhook)
            batches.add(webhook)
        batches.flush()
        seconds["webhooks"] = time.perf_counter() - started

        # Each event goes to every subscriber, as fan_out would send it: events x subscribers deliveries.
        started = time.perf_counter()
        events = deliveries // len(subscribers)
        attempts = 0
        now = datetime.now(UTC)
        for e in range(events):
            attempts += delivered(batches, principal, subscribers, f"Bench alert {e}", e, now)
        batches.flush()
        seconds["deliveries"] = time.perf_counter() - started

        # The webhooks listed first (the newest) get an attempt an hour for the last day: a full
        # day of health each (one event an hour, delivered to all of them).
        started = time.perf_counter()
        listed = created[-LISTED:]
        for hour in range(HEALTH_HOURS):
            at = now - timedelta(hours=hour, minutes=1)
            attempts += delivered(batches, principal, listed, f"Bench hour {hour}", hour, at)
        batches.flush()
        seconds["health"] = time.perf_counter() - started

        started = time.perf_counter()
        app.follower.catch_up()
        seconds["catch_up"] = time.perf_counter() - started
    finally:
        app.close()
    return Filled(
        key=key,
        subscribed_webhook=subscribers[0].id,
        webhooks=webhooks,
        events=events,
        deliveries=events * len(subscribers),
        attempts=attempts,
        health_deliveries=HEALTH_HOURS * min(LISTED, webhooks),
        seconds={name: round(s, 2) for name, s in seconds.items()},
    )


# -- measuring ------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection, one request at a time; only the request and its response are timed."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session = session
        self.url = url + "/graphql"
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def post(self, query: str, variables: dict[str, Any]) -> tuple[float, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            raw = await response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        result = json.loads(raw)
        if response.status != 200 or result.get("errors"):
            raise RuntimeError(f"HTTP {response.status}: {raw[:500]!r}")
        return elapsed_ms, result["data"]


def summarize(name: str, samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "name": name,
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 2),
        "p95_ms": round(percentile(ordered, 95), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2),
    }


async def deep_cursor(client: Client, query: str, variables: dict[str, Any], pages: int) -> tuple[str, int]:
    """The `after` cursor that many pages in (fewer when the list is shorter), and the page it opens."""
    after = None
    page = 1
    while page <= pages:
        _, data = await client.post(query, {**variables, "after": after})
        (connection,) = data.values()
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
        page += 1
    if after is None:
        raise RuntimeError("the list has a single page: fill more to measure a deep page")
    return after, page


async def run_queries(url: str, filled: Filled, n: int, warmup: int, deep_pages: int) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        client = Client(session, url, filled.key)
        first = {"first": PAGE}
        by_webhook = {**first, "webhookId": str(filled.subscribed_webhook)}
        webhooks_after, webhooks_page = await deep_cursor(client, WEBHOOKS, first, deep_pages)
        deliveries_after, deliveries_page = await deep_cursor(client, DELIVERIES, first, deep_pages)
        plan: list[tuple[str, str, dict[str, Any], int | None]] = [
            ("baseline_typename", TYPENAME, {}, None),
            ("webhooks_first", WEBHOOKS, first, 1),
            ("webhooks_deep", WEBHOOKS, {**first, "after": webhooks_after}, webhooks_page),
            ("deliveries_first", DELIVERIES, first, 1),
            ("deliveries_deep", DELIVERIES, {**first, "after": deliveries_after}, deliveries_page),
            ("deliveries_by_webhook_first", DELIVERIES, by_webhook, 1),
        ]
        # The queries take turns, one request each per round, so that a slow moment of the machine
        # (or of the server: its log follower, a GC) hits all of them alike, baseline included.
        samples: dict[str, list[float]] = {name: [] for name, *_ in plan}
        items: dict[str, int | None] = {}
        for round_ in range(warmup + n):
            for name, query, variables, _ in plan:
                elapsed_ms, data = await client.post(query, variables)
                if round_ >= warmup:
                    samples[name].append(elapsed_ms)
                (connection,) = data.values()
                items[name] = len(connection["edges"]) if isinstance(connection, dict) else None
        for name, fields in LISTINGS:
            samples[name] = await list_all(client.post, LISTED_PAGE.format(fields=fields), warmup, n)
            items[name] = LISTED
            plan.append((name, "", {}, None))
        results: list[dict[str, Any]] = []
        for name, _, _, page in plan:
            result = {**summarize(name, samples[name]), "items": items[name], "page": page}
            if results:  # the baseline comes first: what each page costs above the HTTP/GraphQL floor
                result["p50_over_baseline_ms"] = round(result["p50_ms"] - results[0]["p50_ms"], 2)
            print(json.dumps(result), flush=True)
            results.append(result)
        return results


def commit() -> str | None:
    """The checked-out commit, with "-dirty" when tracked files differ from it: which code was measured."""
    state = git_state()
    return None if state["commit"] is None else state["commit"] + ("-dirty" if state["dirty"] else "")


# -- the run --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readmodels", description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests before each query")
    parser.add_argument("--deep-pages", type=int, default=100, help="how many pages in the deep page is")
    parser.add_argument("--keep", action="store_true", help="keep the store's directory and print it")
    args = parser.parse_args(argv)
    if args.webhooks < 2 or args.deliveries < min(SUBSCRIBERS, args.webhooks):
        parser.error("need at least 2 webhooks and one delivery per subscribed webhook")

    directory = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    try:
        print(f"filling {directory} ...", file=sys.stderr, flush=True)
        filled = fill(directory, args.webhooks, args.deliveries)
        print(f"filled in {filled.seconds}; starting hookline serve", file=sys.stderr, flush=True)
        server = Server(directory=directory, env=server_env(HOOKLINE_SECRET_KEY=SECRET_KEY)).start()
        try:
            assert server.process is not None
            load_before = os.getloadavg()[0]
            results = asyncio.run(
                run_queries(server.url, filled, args.requests, args.warmup, args.deep_pages)
            )
            rss = peak_rss_mb(server.process.pid)
            load_after = os.getloadavg()[0]
        finally:
            server.stop()
        pages = [r for r in results if not r["name"].startswith("baseline")]
        summary = {
            "summary": True,
            "webhooks": filled.webhooks,
            "events": filled.events,
            "deliveries": filled.deliveries,
            "attempts": filled.attempts,
            "health_deliveries": filled.health_deliveries,
            "requests": args.requests,
            "fill_s": {**filled.seconds, "total": round(sum(filled.seconds.values()), 2)},
            "store_mb": round((directory / "var" / "hookline.sqlite3").stat().st_size / 2**20, 1),
            "server_peak_rss_mb": rss,
            "baseline_p95_ms": results[0]["p95_ms"],
            "target_p95_ms": TARGET_P95_MS,
            "target_met": {r["name"]: r["p95_ms"] < TARGET_P95_MS for r in pages},
            "all_targets_met": all(r["p95_ms"] < TARGET_P95_MS for r in pages),
            "commit": commit(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            # Tails mean little on a busy machine: the 1-minute load average around the measurements.
            "loadavg_1m": [round(load_before, 2), round(load_after, 2)],
            "kept": str(directory) if args.keep else None,
        }
        print(json.dumps(summary), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
