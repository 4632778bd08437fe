"""End-to-end benchmark: deliveries/s and publish→arrival latency through a real `hookline serve`,
against the raw ceiling measured in the same run.

Run from the repository root (`make bench` runs the first line):

    .venv/bin/python -m bench.e2e                                # embedded, saturated: 3 000 events
    .venv/bin/python -m bench.e2e --webhooks 20                  # fan-out: 20 matching webhooks an event
    .venv/bin/python -m bench.e2e --per-request                  # one event a request, 32 in flight
    .venv/bin/python -m bench.e2e --per-request --webhooks 0     # publishing only: serve's CPU an event
    .venv/bin/python -m bench.e2e --per-request --via http       # one event a POST /events/{type}
    .venv/bin/python -m bench.e2e --rate 200 --duration 30       # fixed rate: latency, not saturated
    .venv/bin/python -m bench.e2e --mode distributed --workers 1 # PostgreSQL + Redis + 1 worker
    .venv/bin/python -m bench.e2e --compare-workers              # distributed, 1 then 2 workers
    .venv/bin/python -m bench.e2e --events 5000 --webhooks 20    # 100 000 deliveries: serve's peak RSS
    .venv/bin/python -m bench.e2e --events 200 --timeout 60      # smoke run

Distributed mode needs PostgreSQL on 127.0.0.1:5432 (see DEVELOPERS.md) and `redis-server` on the PATH:
each run gets a database of its own (harness.services.postgres_database) and a private redis-server on a
free port (--redis-url to use another; not harness.services.distributed_env, whose Redis db indexes are
shared with the test suite and anything else using them, whose workers would take this run's jobs),
with the production sweep interval (HOOKLINE_SWEEP_SECONDS unset).

What one run does, everything on this machine (so only the ratios of one run mean something):
1. A receiver process (a subprocess: aiohttp on 127.0.0.1, uvloop when installed) answers every POST
   with 200 at once and records, per request, its arrival time (time.time(), once the body is read),
   the path (one per webhook), the event id and the payload's `seq` and `sent_at`.
2. Raw ceiling: one aiohttp ClientSession posts the same bodies Hookline would send (the event envelope
   with the same 1 KiB payload, and headers of the same shape) to the same receiver, with
   --delivery-concurrency requests in flight (Hookline's HOOKLINE_DELIVERY_CONCURRENCY, set to the same
   value), as many requests as the run expects deliveries. raw/s = requests / (last arrival - start).
3. Hookline: `hookline serve` (embedded: SQLite in a temporary directory; distributed: plus --workers
   `hookline worker` processes) with HOOKLINE_ALLOW_PRIVATE_TARGETS=true and HOOKLINE_LOG_LEVEL=warning;
   an admin and a publisher key through the CLI; --webhooks webhooks subscribed to the event type, each
   at its own path of the receiver; a warm-up (a few events, waited for); then the measured events:
   - saturated (--rate 0): `publishEvents` with --batch events per request, --concurrency requests in
     flight;
   - saturated, one event per request (--per-request), as a source system that sends each event as it
     happens: `publishEvent` (or with --via http a `POST /events/bench.e2e` of the payload), --in-flight
     requests in flight, each on its keep-alive connection;
   - fixed rate (--rate R): `publishEvent` (or --via http), one event per request, started every 1/R s
     for --duration s (--events is then R x duration), at most --concurrency in flight (a start delayed
     by that cap shows as `max_schedule_lag_ms`).
   Each payload holds `seq`, `run` and `sent_at` and an ITSM-incident-like record of 1 KiB of JSON
   (bench.publisher.payload: words of a fixed vocabulary, ids and numbers from an RNG seeded by `seq`),
   which zlib compresses about 1.9x, as real payloads, not as padding. `sent_at` is time.time()
   taken just before the publish request that carries the event is serialised and sent (so latency
   includes the whole publish request; one stamp for every event of a batch). It then waits (at most
   --timeout s after the last publish returned) until every expected (event, webhook) pair arrived.
   With --webhooks 0 nothing is delivered (nor is the raw ceiling measured): the run measures
   publishing alone.
4. The store: `serve` and the workers are stopped, and what the store holds is read (bench.footprint):
   SQLite after `PRAGMA wal_checkpoint(TRUNCATE)`, its pages and each table's (with its indexes) from
   the `dbstat` virtual table; PostgreSQL after a VACUUM, each table's pg_total_relation_size (heap,
   TOAST, indexes). The same is read, without the checkpoint, just before the measured events.

Output on stdout, JSON Lines: one object per run, with these keys.
- the run: mode, workers, events, webhooks, publishing ("batches", "per-request" or "fixed-rate"), via
  ("graphql" or "http": how one event a request was published),
  batch (null unless in batches), concurrency, in_flight (publish requests in flight at most: --in-flight
  one event a request, else --concurrency), rate (null when saturated), delivery_concurrency;
- arrivals: deliveries_expected, deliveries (distinct (event, webhook) pairs that arrived), duplicates,
  missing, complete;
- publishing: publish_errors, first_publish_error, publish_s (first publish stamped -> last publish
  returned), publishes_per_s (events / publish_s), publish_request_p50_ms, publish_request_p99_ms,
  max_schedule_lag_ms (fixed rate, else null);
- the figures of merit: duration_s (first publish stamped -> last arrival), deliveries_per_s
  (deliveries / duration_s), latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_max_ms (arrival -
  sent_at, per delivery, first arrival of each pair), raw_requests, raw_per_s, raw_latency_p50_ms,
  raw_latency_p99_ms, ratio (deliveries_per_s / raw_per_s; it means something when saturated);
- the processes: peak_rss_mb ({serve, worker-N}: VmHWM read at the end), cpu_s ({serve, worker-N,
  receiver, bench, and when distributed redis (the private redis-server) and postgres (the run's
  database backends that existed when publishing began)}: CPU seconds from the first publish to the
  last arrival), cpu_ms_per_delivery (the CPU of serve, workers, redis and postgres over that time,
  per delivery: other load on the machine moves it far less than deliveries/s),
  serve_cpu_ms_per_delivery (serve's part of it), serve_cpu_ms_per_event (serve's CPU from the first
  publish to the last publish returned, per event published: with --webhooks 0, what publishing costs),
  serve_cpu_ms_per_event_until_quiet (from the first publish until serve went quiet after the run, its
  trailing work such as the log follower's included, per event), processes_alive_at_end ({serve,
  worker-N});
- the store: delivery_statuses (deliveries by status in the read model, warm-up included, polled every
  0.2 s until none is PENDING or RETRYING, at most 30 s), settled_s (last arrival -> that moment; null
  if it never came), warmup_s, warmup_events (20, or --in-flight when one event a request);
- the store's size (step 4): bytes_per_delivery (the bytes the store takes after the run over every
  delivery it holds, the warm-up's too; the fixed part, ~0.2 MB in SQLite and ~1 MB in PostgreSQL,
  included, so run thousands; null: no delivery), bytes_per_event (the same over events), and store:
  {engine, measured_by, bytes, bytes_in_use (less SQLite's free pages), file_bytes (SQLite) or
  database_bytes (PostgreSQL's pg_database_size), deliveries_stored, events_stored, bytes_per_delivery,
  bytes_in_use_per_delivery, bytes_per_event, added_bytes (what the measured events added: bytes in
  use after less before), added_bytes_per_delivery, added_bytes_per_event, tables: {name: {bytes, rows,
  bytes_per_delivery, bytes_per_event, added_bytes, added_rows}}, largest first};
- the logs: log_errors ({file: lines at level error or above}, for each log of the server directory),
  first_log_error, server_dir (kept with --keep, or when the run is incomplete, a publish failed, a
  process died or something was logged at error; else null and deleted);
- targets: {"name": met} for the targets (below) that apply to the run;
- the machine: python, cpus, loop, loadavg_1m ({start, end}: well above `cpus` means something else
  was running too, and the run is not worth keeping), commit and dirty (the checkout's HEAD, and
  whether tracked files differed from it).
With --compare-workers, the two runs' lines, then {"compare_workers": true, "deliveries_per_s": {"1",
"2"}, "ratio": {"1", "2"}, "speedup", "targets"}. Progress goes to stderr. The exit status is 1 when a
run missed deliveries or a publish failed.

Targets: saturated with one webhook, >= 1 000 deliveries/s and ratio >= 0.35; with several (fan-out),
ratio >= 0.25; at a fixed rate, latency p99 < 250 ms; serve's peak RSS < 300 MB once a run made
>= 100 000 deliveries; 2 workers >= 1.6 x the deliveries/s of 1. One event a request: serve's CPU per
event <= 0.45 ms with no webhook, ratio >= 0.15 with one (through POST /events/{type}: <= 0.2 ms and
ratio >= 0.3); with one webhook, the SQLite store <= 2 500 bytes per delivery.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.deployment import deployed, log_errors
from bench.footprint import summary
from bench.loop import run_async
from bench.measure import measure
from bench.options import Options
from bench.processes import peak_rss_mb, wait_idle
from bench.raw import raw_ceiling
from bench.receiver import ReceiverProcess
from bench.report import machine, progress, speedup_targets, targets

NO_RAW_CEILING: dict[str, Any] = {  # with no webhook: nothing to compare with
    "raw_requests": 0,
    "raw_per_s": None,
    "raw_latency_p50_ms": None,
    "raw_latency_p99_ms": None,
}


def run_benchmark(options: Options, receiver: ReceiverProcess | None = None) -> dict[str, Any]:
    """One run: the raw ceiling, then Hookline; returns the figures (the JSON line's object)."""
    if receiver is None:
        with ReceiverProcess() as own:
            return run_benchmark(options, own)
    load_start = round(os.getloadavg()[0], 2)
    if load_start > (os.cpu_count() or 1):
        progress(
            f"the machine is busy (load {load_start} on {os.cpu_count()} CPUs): figures will be low and noisy"
        )
    raw = NO_RAW_CEILING
    if options.expected:  # else nothing is delivered, and there is nothing to compare with
        progress(f"raw ceiling: {options.expected} requests, {options.delivery_concurrency} in flight")
        raw = run_async(
            raw_ceiling(receiver, options.expected, options.delivery_concurrency, options.timeout)
        )
        progress(f"raw ceiling: {raw['raw_per_s']}/s")
    directory: Path | None = None
    with deployed(options, receiver) as deployment:
        directory = deployment.server.directory
        wait_idle(list(deployment.pids.values()))
        progress("hookline is idle; warming up")
        measured, store_before = run_async(measure(options, receiver, deployment))
        peak = {name: peak_rss_mb(pid) for name, pid in deployment.pids.items()}
        processes = [deployment.server.process, *deployment.server.worker_processes]
        pids = deployment.pids
        alive = {name: p is not None and p.poll() is None for name, p in zip(pids, processes, strict=True)}
        deployment.stop()
        stored = measured["warmup_events"] + options.total_events
        store = summary(
            deployment.footprint(at_rest=True),
            store_before,
            (stored * options.webhooks, stored),
            (options.expected, options.total_events),
        )
        progress(f"the store: {store['bytes']} bytes, {store['bytes_per_delivery']} a delivery")
    errors, first_error = log_errors(directory)
    result: dict[str, Any] = {
        "mode": options.mode,
        "workers": options.workers if options.mode == "distributed" else 0,
        "events": options.total_events,
        "webhooks": options.webhooks,
        "publishing": options.publishing,
        "via": options.via if options.publishing != "batches" else None,
        "batch": options.batch if options.publishing == "batches" else None,
        "concurrency": options.concurrency,
        "in_flight": options.in_flight_requests,
        "rate": options.rate or None,
        "delivery_concurrency": options.delivery_concurrency,
        **measured,
        **raw,
        "ratio": round(measured["deliveries_per_s"] / raw["raw_per_s"], 3)
        if measured["deliveries_per_s"] and raw["raw_per_s"]
        else None,
        "bytes_per_delivery": store["bytes_per_delivery"],
        "bytes_per_event": store["bytes_per_event"],
        "store": store,
        "peak_rss_mb": peak,
        "processes_alive_at_end": alive,
        "log_errors": errors,
        "first_log_error": first_error,
    }
    result["targets"] = targets(result, options)
    troubled = (
        not result["complete"] or result["publish_errors"] or any(errors.values()) or not all(alive.values())
    )
    if options.keep or troubled:
        result["server_dir"] = str(directory)
    else:
        result["server_dir"] = None
        shutil.rmtree(directory, ignore_errors=True)
    result.update(machine(load_start))
    return result


def compare_workers(
    options: Options, receiver: ReceiverProcess
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Distributed with 1 then 2 workers, same options otherwise; the runs and the speed-up line."""
    runs = []
    for workers in (1, 2):
        result = run_benchmark(
            Options(**{**options.__dict__, "mode": "distributed", "workers": workers}), receiver
        )
        print(json.dumps(result), flush=True)
        runs.append(result)
    one, two = (r["deliveries_per_s"] or 0.0 for r in runs)
    speedup = round(two / one, 2) if one else None
    summary = {
        "compare_workers": True,
        "deliveries_per_s": {"1": one, "2": two},
        "ratio": {"1": runs[0]["ratio"], "2": runs[1]["ratio"]},
        "speedup": speedup,
        "targets": speedup_targets(speedup),
    }
    return runs, summary


def main(argv: Sequence[str] | None = None) -> int:
    assert __doc__
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = Options()
    parser.add_argument("--mode", choices=["embedded", "distributed"], default=defaults.mode)
    parser.add_argument(
        "--workers", type=int, choices=[1, 2], default=defaults.workers, help="distributed only"
    )
    parser.add_argument("--events", type=int, default=defaults.events, help="events to publish (saturated)")
    parser.add_argument(
        "--webhooks", type=int, default=defaults.webhooks, help="matching webhooks per event; 0: publish only"
    )
    parser.add_argument("--batch", type=int, default=defaults.batch, help="events per publishEvents request")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="publish requests in flight"
    )
    parser.add_argument(
        "--per-request",
        action="store_true",
        help="saturated, one event per publishEvent request (keep-alive) instead of publishEvents batches",
    )
    parser.add_argument(
        "--in-flight", type=int, default=defaults.in_flight, help="--per-request: requests in flight"
    )
    parser.add_argument(
        "--via",
        choices=["graphql", "http"],
        default=defaults.via,
        help="one event a request (--per-request, --rate): publishEvent, or POST /events/{type}",
    )
    parser.add_argument("--rate", type=float, default=defaults.rate, help="events/s; 0 = saturated")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds, at a fixed rate")
    parser.add_argument(
        "--timeout", type=float, default=defaults.timeout, help="seconds to wait for arrivals"
    )
    parser.add_argument(
        "--delivery-concurrency",
        type=int,
        default=defaults.delivery_concurrency,
        help="HOOKLINE_DELIVERY_CONCURRENCY and the raw client's requests in flight",
    )
    parser.add_argument("--keep", action="store_true", help="keep the server's directory and print it")
    parser.add_argument(
        "--redis-url",
        help="distributed: a Redis (db) for this run alone; default: a private redis-server on a free port",
    )
    parser.add_argument("--compare-workers", action="store_true", help="distributed, 1 then 2 workers")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 500:
        parser.error("--batch must be 1 to 500 (publishEvents takes at most 500 events)")
    if min(args.events, args.concurrency, args.in_flight, args.delivery_concurrency) < 1:
        parser.error("--events, --concurrency, --in-flight and --delivery-concurrency must be at least 1")
    if args.webhooks < 0:
        parser.error("--webhooks must be 0 (publishing only) or more")
    if args.rate < 0 or (args.rate > 0 and args.rate * args.duration < 1):
        parser.error("--rate must be 0 (saturated) or give at least one event over --duration")
    if args.per_request and args.rate > 0:
        parser.error("--per-request is saturated: --rate already publishes one event per request")
    if args.via == "http" and not (args.per_request or args.rate > 0):
        parser.error("--via http publishes one event a request: give --per-request or --rate")
    if args.compare_workers and args.webhooks == 0:
        parser.error("--compare-workers compares deliveries/s: --webhooks must be at least 1")
    options = Options(
        mode=args.mode,
        workers=args.workers,
        events=args.events,
        webhooks=args.webhooks,
        batch=args.batch,
        concurrency=args.concurrency,
        rate=args.rate,
        duration=args.duration,
        timeout=args.timeout,
        delivery_concurrency=args.delivery_concurrency,
        keep=args.keep,
        redis_url=args.redis_url,
        per_request=args.per_request,
        in_flight=args.in_flight,
        via=args.via,
    )
    with ReceiverProcess() as receiver:
        if args.compare_workers:
            runs, summary = compare_workers(options, receiver)
            print(json.dumps(summary), flush=True)
        else:
            runs = [run_benchmark(options, receiver)]
            print(json.dumps(runs[0]), flush=True)
    return 0 if all(r["complete"] and not r["publish_errors"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
