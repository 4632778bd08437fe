"""Distributed serial share: what every delivery of a cluster passes through in one place, and the
cluster's cap computed from it (issue 25, direction 5).

Run from the repository root (`make bench-serial`):

    .venv/bin/python -m bench.serial                  # 3 000 events, 1 webhook, 2 workers
    .venv/bin/python -m bench.serial --events 200     # smoke run

In distributed mode (PostgreSQL store, Redis + arq, `hookline worker`s) two things are serial however
many workers run:
- serve's log follower, which applies every stored event of the cluster (the workers' attempts
  included) to the read models, one batch after another on one thread;
- the events table's lock, which the recorder (store.postgres) takes in EXCLUSIVE mode for each insert
  transaction, so that notification ids become visible in order: inserts never overlap.

One run: a distributed `hookline serve` with --workers workers, saturated (bench.e2e's batches), and:
1. serve's CPU per delivery (bench.e2e's figure: the whole process, publishing included), and the
   follower's own share from serve's /metrics (hookline_follower_busy_seconds: wall time in catch-up,
   round trips to PostgreSQL included; hookline_follower_cpu_seconds: its thread's CPU), from before
   the warm-up until the read model settled, per delivery made meanwhile;
2. the insert transactions the run made: the events it stored, grouped by the transaction that wrote
   them (a row's `xmin`), so transactions and events per delivery;
3. the lock's hold per insert transaction: once serve and the workers are idle, the same transactions
   (same rows, same sizes, in the same order) are replayed through the recorder's own insert function
   into a copy of the events table (schema `hl_replay` of the run's database), one at a time, uncontended;
   each one's round trip less a prepared `SELECT 1`'s (the median of 200) is its hold: the lock is
   taken inside the statement and released when the statement's transaction commits (the WAL flush
   included), so this is an upper bound (the argument's decoding before the lock counts too).
4. the follower at full batches: serve and the workers stopped, a copy of the run's database with its
   read models and audit trail emptied is caught up from the start by a `ReadModel` in this process
   (batches of 500; every event decoded, where serve holds its own publishes decoded): its wall time
   and CPU per delivery, uncontended.
The computed cap: min(1 / the follower's CPU per delivery, 1 / the lock's hold per delivery). Also given:
1 / the follower's busy time per delivery (its round trips to PostgreSQL are serial too, and on a busy
machine its waits for a core and the GIL), 1 / the catch-up's time per delivery (the follower's
capacity once its batches are full) and 1 / serve's whole CPU per delivery (not all serial: publishing
spreads over gateways).

Output on stdout: one JSON object with bench.e2e's run figures under `e2e`, and under `serial`:
deliveries, serve_cpu_ms_per_delivery, follower_busy_ms_per_delivery, follower_cpu_ms_per_delivery,
follower_applied_per_delivery, insert_transactions, insert_transactions_per_delivery,
events_per_transaction, rtt_ms, lock_hold_ms_per_transaction {p50, p99, mean},
lock_hold_ms_per_delivery, lock_hold_by_size {"1", "2-9", "10-99", "100+": {transactions, mean_ms}},
lock_hold_fit {fixed_ms, per_event_ms} (least squares over the replayed transactions),
catch_up_busy_ms_per_delivery, catch_up_cpu_ms_per_delivery, catch_up_applied, cap_follower_cpu_per_s,
cap_follower_busy_per_s, cap_lock_per_s, cap_catch_up_per_s, cap_serve_cpu_per_s, computed_cap_per_s,
target_met (>= 10 000).
`e2e` also holds log_errors and first_log_error (bench.e2e's), and server_dir when a delivery is
missing or something was logged at error. Progress goes to stderr. Exit status 1 then.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from bench.deployment import deployed, log_errors
from bench.loop import run_async
from bench.measure import measure
from bench.options import Options
from bench.processes import wait_idle
from bench.receiver import ReceiverProcess
from bench.report import machine, progress

TARGET_PER_S = 10_000
EVENTS_TABLE = "hookline_events"  # hookline.keys.POSTGRES_EVENTS
REPLAY_SCHEMA = "hl_replay"
FOLLOWER_METRICS = ("busy_seconds", "cpu_seconds", "applied")

Rows = list[tuple[Any, int, str, bytes]]  # originator_id, originator_version, topic, state


def follower_work(url: str) -> dict[str, float] | None:
    """serve's hookline_follower_* counters (None: a serve without them)."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in FOLLOWER_METRICS:
            if line.startswith(f"hookline_follower_{name}_total ") or line.startswith(
                f"hookline_follower_{name} "
            ):
                found[name] = float(line.split()[-1])
    return found if len(found) == len(FOLLOWER_METRICS) else None


def last_position(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as connection:
        row = connection.execute(f"SELECT max(notification_id) FROM {EVENTS_TABLE}").fetchone()
    return int(row[0] or 0) if row else 0


def insert_transactions(database_url: str, after: int) -> list[Rows]:
    """The events stored after position `after`, grouped by the transaction that inserted them."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        stored = connection.execute(
            "SELECT xmin::text, originator_id, originator_version, topic, state"
            f" FROM {EVENTS_TABLE} WHERE notification_id > %s ORDER BY notification_id",
            (after,),
        ).fetchall()
    transactions: dict[str, Rows] = {}
    for xmin, *row in stored:
        transactions.setdefault(xmin, []).append((row[0], row[1], row[2], bytes(row[3])))
    return list(transactions.values())


def replay(database_url: str, transactions: list[Rows]) -> tuple[float, list[float]]:
    """The round trip of a prepared `SELECT 1` (median of 200, s), and each transaction's hold (s) when
    replayed through the recorder's insert function into a copy of the events table, uncontended."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresDatastore

    from store.postgres import BinaryInsertRecorder

    parts = urlsplit(database_url)
    datastore = PostgresDatastore(
        unquote(parts.path.lstrip("/")),
        parts.hostname or "127.0.0.1",
        parts.port or 5432,
        unquote(parts.username or "postgres"),
        unquote(parts.password or ""),
        schema=REPLAY_SCHEMA,
    )
    try:
        with datastore.get_connection() as connection:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {REPLAY_SCHEMA}")
        recorder = BinaryInsertRecorder(datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        round_trips = []
        with datastore.get_connection() as connection, connection.cursor() as cursor:
            for _ in range(200):
                started = time.perf_counter()
                cursor.execute("SELECT 1", prepare=True)
                cursor.fetchall()
                round_trips.append(time.perf_counter() - started)
        rtt = statistics.median(round_trips)
        holds = []
        for rows in transactions:
            events = [StoredEvent(*row) for row in rows]
            started = time.perf_counter()
            recorder.insert_events(events)
            holds.append(max(time.perf_counter() - started - rtt, 0.0))
        return rtt, holds
    finally:
        datastore.close()


def follower_catch_up(database_url: str) -> dict[str, float]:
    """A follower's cost at full batches: a copy of the run's database (serve and the workers stopped)
    with its read models and audit trail emptied, caught up by a `ReadModel` in this process, timed
    (wall and this thread's CPU). Every event is decoded (serve holds its own publishes decoded)."""
    import psycopg

    from bench.deployment import SECRET_KEY
    from harness.services import postgres_database
    from hookline.settings import Settings
    from hookline.wiring import open_application

    source = urlsplit(database_url).path.lstrip("/")
    with postgres_database() as copy:
        name = urlsplit(copy).path.lstrip("/")
        with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}"')
            for attempt in range(50):  # the stopped processes' backends may take a moment to go
                try:
                    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
                    break
                except psycopg.errors.ObjectInUse:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
        with psycopg.connect(copy, autocommit=True) as connection:
            connection.execute("UPDATE hl_meta SET value = '0' WHERE name = 'schema_version'")
            connection.execute("DELETE FROM hl_audit")  # chained again, as serve does
            connection.execute("DELETE FROM hl_audit_heads")
        opened = open_application(Settings(database_url=copy, secret_key=SECRET_KEY))
        read_model = opened.read_model
        try:
            started, cpu_started = time.perf_counter(), time.thread_time()
            read_model.catch_up()
            busy, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        finally:
            opened.app.close()
    return {"busy_seconds": busy, "cpu_seconds": cpu, "applied": float(read_model.work.applied)}


def ms(seconds: float) -> float:
    return round(seconds * 1000, 4)


def per_s(seconds: float) -> int | None:
    return round(1 / seconds) if seconds > 0 else None


def by_size(transactions: list[Rows], holds: list[float]) -> dict[str, dict[str, float]]:
    """Transactions grouped by how many events they inserted (1, 2-9, 10-99, 100+): how many, and
    their mean hold (ms): what a transaction costs however small, and what each event adds."""
    groups: dict[str, list[float]] = {}
    for rows, hold in zip(transactions, holds, strict=True):
        size = len(rows)
        name = "1" if size == 1 else "2-9" if size < 10 else "10-99" if size < 100 else "100+"
        groups.setdefault(name, []).append(hold)
    return {
        name: {"transactions": len(held), "mean_ms": ms(sum(held) / len(held))}
        for name, held in sorted(groups.items())
    }


def hold_fit(transactions: list[Rows], holds: list[float]) -> dict[str, float | None]:
    """hold = fixed + per_event x events, by least squares over the replayed transactions (ms): what a
    transaction costs however small (its commit's WAL flush among it), and what each event adds."""
    sizes = [float(len(rows)) for rows in transactions]
    if len(set(sizes)) < 2:
        return {"fixed_ms": None, "per_event_ms": None}
    mean_size, mean_hold = statistics.fmean(sizes), statistics.fmean(holds)
    slope = sum((x - mean_size) * (y - mean_hold) for x, y in zip(sizes, holds, strict=True)) / sum(
        (x - mean_size) ** 2 for x in sizes
    )
    return {"fixed_ms": ms(mean_hold - slope * mean_size), "per_event_ms": ms(slope)}


def serial_figures(
    deliveries: int,
    serve_cpu_ms: float | None,
    work: dict[str, float] | None,
    transactions: list[Rows],
    rtt: float,
    holds: list[float],
) -> dict[str, Any]:
    """The serial share per delivery and the caps computed from it."""
    events = sum(len(rows) for rows in transactions)
    hold = sum(holds) / deliveries
    busy = work["busy_seconds"] / deliveries if work else None
    ordered = sorted(holds) or [0.0]
    cpu = work["cpu_seconds"] / deliveries if work else None
    caps = {
        "cap_follower_cpu_per_s": per_s(cpu) if cpu is not None else None,
        "cap_follower_busy_per_s": per_s(busy) if busy is not None else None,
        "cap_lock_per_s": per_s(hold),
        "cap_serve_cpu_per_s": per_s(serve_cpu_ms / 1000) if serve_cpu_ms else None,
    }
    serial = [c for c in (caps["cap_follower_cpu_per_s"], caps["cap_lock_per_s"]) if c is not None]
    computed = min(serial) if serial else None
    return {
        "deliveries": deliveries,
        "serve_cpu_ms_per_delivery": serve_cpu_ms,
        "follower_busy_ms_per_delivery": ms(busy) if busy is not None else None,
        "follower_cpu_ms_per_delivery": ms(cpu) if cpu is not None else None,
        "follower_applied_per_delivery": round(work["applied"] / deliveries, 2) if work else None,
        "insert_transactions": len(transactions),
        "insert_transactions_per_delivery": round(len(transactions) / deliveries, 3),
        "events_per_transaction": round(events / len(transactions), 2) if transactions else None,
        "rtt_ms": ms(rtt),
        "lock_hold_ms_per_transaction": {
            "p50": ms(ordered[len(ordered) // 2]),
            "p99": ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]),
            "mean": ms(sum(holds) / len(holds)) if holds else None,
        },
        "lock_hold_ms_per_delivery": ms(hold),
        "lock_hold_by_size": by_size(transactions, holds),
        "lock_hold_fit": hold_fit(transactions, holds),
        **caps,
        "computed_cap_per_s": computed,
        "target_met": computed is not None and computed >= TARGET_PER_S,
    }


def run_serial(options: Options) -> dict[str, Any]:
    """One distributed run, then the replay; the figures (stdout's object)."""
    load_start = round(os.getloadavg()[0], 2)
    with ReceiverProcess() as receiver, deployed(options, receiver) as deployment:
        assert deployment.database_url
        wait_idle(list(deployment.pids.values()))
        url = deployment.server.url
        work_before = follower_work(url)
        position = last_position(deployment.database_url)
        progress("hookline is idle; warming up")
        figures, _ = run_async(measure(options, receiver, deployment))
        work_after = follower_work(url)
        wait_idle(list(deployment.pids.values()))
        transactions = insert_transactions(deployment.database_url, position)
        progress(f"replaying {len(transactions)} insert transactions, one at a time")
        rtt, holds = replay(deployment.database_url, transactions)
        directory = deployment.server.directory
        deployment.stop()
        progress("catching up a copy of the run's log from the start")
        catch_up = follower_catch_up(deployment.database_url)
    deliveries = (figures["warmup_events"] + options.total_events) * options.webhooks
    work = (
        {name: work_after[name] - work_before[name] for name in FOLLOWER_METRICS}
        if work_before and work_after
        else None
    )
    serial = serial_figures(deliveries, figures["serve_cpu_ms_per_delivery"], work, transactions, rtt, holds)
    serial.update(
        {
            "catch_up_busy_ms_per_delivery": ms(catch_up["busy_seconds"] / deliveries),
            "catch_up_cpu_ms_per_delivery": ms(catch_up["cpu_seconds"] / deliveries),
            "catch_up_applied": int(catch_up["applied"]),
            "cap_catch_up_per_s": per_s(catch_up["busy_seconds"] / deliveries),
        }
    )
    errors, first_error = log_errors(directory)
    figures.update({"log_errors": errors, "first_log_error": first_error})
    if figures["complete"] and not any(errors.values()):
        shutil.rmtree(directory, ignore_errors=True)
    else:
        figures["server_dir"] = str(directory)
    return {
        "workers": options.workers,
        "events": options.total_events,
        "webhooks": options.webhooks,
        "serial": serial,
        "e2e": figures,
        **machine(load_start),
    }


def main(argv: Sequence[str] | None = None) -> int:
    assert __doc__
    parser = argparse.ArgumentParser(prog="python -m bench.serial", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--webhooks", type=int, default=1)
    parser.add_argument("--workers", type=int, choices=[1, 2], default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.events < 1 or args.webhooks < 1:
        parser.error("--events and --webhooks must be at least 1")
    options = Options(
        mode="distributed",
        workers=args.workers,
        events=args.events,
        webhooks=args.webhooks,
        timeout=args.timeout,
    )
    result = run_serial(options)
    print(json.dumps(result), flush=True)
    return 0 if result["e2e"]["complete"] and not any(result["e2e"]["log_errors"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
