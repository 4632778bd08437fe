"""End-to-end benchmark: deliveries/s and publish→arrival latency through a real `hookline serve`,
against the raw ceiling measured in the same run.

Run from the repository root (`make bench` runs the first line):

    .venv/bin/python -m bench.e2e                                # embedded, saturated: 3 000 events
    .venv/bin/python -m bench.e2e --webhooks 20                  # fan-out: 20 matching webhooks an event
    .venv/bin/python -m bench.e2e --rate 200 --duration 30       # fixed rate: latency, not saturated
    .venv/bin/python -m bench.e2e --mode distributed --workers 1 # PostgreSQL + Redis + 1 worker
    .venv/bin/python -m bench.e2e --compare-workers              # distributed, 1 then 2 workers
    .venv/bin/python -m bench.e2e --events 5000 --webhooks 20    # 100 000 deliveries: serve's peak RSS
    .venv/bin/python -m bench.e2e --events 200 --timeout 60      # smoke run

Distributed mode needs PostgreSQL on 127.0.0.1:5432 (see DEVELOPERS.md) and `redis-server` on the PATH:
each run gets a database of its own (tests.support.postgres_database) and a private redis-server on a
free port (--redis-url to use another; not tests.support.distributed_env, whose Redis db indexes are
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
   - fixed rate (--rate R): `publishEvent`, one event per request, started every 1/R s for --duration s
     (--events is then R x duration), at most --concurrency in flight (a start delayed by that cap shows
     as `max_schedule_lag_ms`).
   Each payload holds `seq`, `run` and `sent_at`, padded to 1 KiB of JSON. `sent_at` is time.time() taken
   just before the publish request that carries the event is serialised and sent (so latency includes
   the whole publish request; one stamp for every event of a batch). It then waits (at most --timeout s
   after the last publish returned) until every expected (event, webhook) pair arrived.

Output on stdout, JSON Lines: one object per run, with these keys.
- the run: mode, workers, events, webhooks, batch (null at a fixed rate), concurrency, rate (null when
  saturated), delivery_concurrency;
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
  per delivery: other load on the machine moves it far less than deliveries/s), processes_alive_at_end
  ({serve, worker-N});
- the store: delivery_statuses (deliveries by status in the read model, warm-up included, polled every
  0.2 s until none is PENDING or RETRYING, at most 30 s), settled_s (last arrival -> that moment; null
  if it never came), warmup_s;
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
>= 100 000 deliveries; 2 workers >= 1.6 x the deliveries/s of 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web

from tests.support import POSTGRES, Server, free_port, postgres_database, server_env

EVENT_TYPE = "bench.e2e"
PAYLOAD_BYTES = 1024
SECRET_KEY = "hookline-e2e-bench-not-a-secret"  # noqa: S105 - the store is thrown away
CONTROL = "/_bench"
WARMUP_EVENTS = 20
POLL_SECONDS = 0.05
T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent

PUBLISH_ONE = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }"
PUBLISH_MANY = (
    "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId duplicate } }"
)
CREATE_WEBHOOK = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { id } }"
STATUSES = ("PENDING", "RETRYING", "SUCCEEDED", "FAILED")
STATUS_COUNTS = (
    "{ " + " ".join(f"{s}: deliveries(status: {s}, first: 1) {{ totalCount }}" for s in STATUSES) + " }"
)
SETTLE_SECONDS = 30.0

TARGET_SATURATED_PER_S = 1000.0
TARGET_RATIO_ONE = 0.35
TARGET_RATIO_FAN_OUT = 0.25
TARGET_FIXED_P99_MS = 250.0
TARGET_SERVE_RSS_MB = 300.0
TARGET_RSS_AFTER_DELIVERIES = 100_000
TARGET_SPEEDUP = 1.6


def progress(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed, as `hookline serve` runs under uvicorn: the same loop on both sides."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_async(coroutine: Awaitable[T]) -> T:
    loop = new_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


# -- payloads -------------------------------------------------------------------------------------


def payload(seq: int, run: str, sent_at: float) -> dict[str, Any]:
    """The event's data: `seq`, `run`, `sent_at`, and padding to PAYLOAD_BYTES of compact JSON."""
    data: dict[str, Any] = {"seq": seq, "run": run, "sent_at": sent_at, "pad": ""}
    data["pad"] = "x" * max(0, PAYLOAD_BYTES - len(orjson.dumps(data)))
    return data


def envelope(seq: int, run: str, sent_at: float, organization_id: str) -> bytes:
    """The body Hookline sends for an event when the webhook has no template."""
    return orjson.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": EVENT_TYPE,
            "occurredAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "organizationId": organization_id,
            "data": payload(seq, run, sent_at),
        }
    )


# -- the receiver (a process of its own) ----------------------------------------------------------

Record = tuple[float, int, float, str, str]
"""(arrival time, seq, sent_at, path, event id)"""


class ReceiverState:
    def __init__(self) -> None:
        self.records: dict[str, list[Record]] = defaultdict(list)
        self.pairs: dict[str, set[tuple[int, str]]] = defaultdict(set)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        try:
            document = orjson.loads(body)
            data = document["data"]
            run, seq, sent_at = str(data["run"]), int(data["seq"]), float(data["sent_at"])
            event_id = str(document.get("id", ""))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            run, seq, sent_at, event_id = "unparsed", -1, 0.0, ""
        self.records[run].append((at, seq, sent_at, request.path, event_id))
        self.pairs[run].add((seq, request.path))
        return web.Response(text="ok")

    async def count(self, request: web.Request) -> web.Response:
        run = request.query.get("run", "")
        return web.json_response({"received": len(self.records[run]), "unique": len(self.pairs[run])})

    async def results(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.records[request.query.get("run", "")]))


async def _serve_receiver() -> None:
    state = ReceiverState()
    app = web.Application(client_max_size=8 * 2**20)
    app.router.add_get(CONTROL + "/count", state.count)
    app.router.add_get(CONTROL + "/results", state.results)
    app.router.add_post("/{tail:.*}", state.receive)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(runner.addresses[0][1], flush=True)  # the port, for the parent
    await asyncio.Event().wait()


def receiver_main() -> None:
    """The receiver process's entry point (see ReceiverProcess)."""
    run_async(_serve_receiver())


class ReceiverProcess:
    """The receiver: `python -c` running receiver_main in a process of its own, ended with the context.

    (A subprocess rather than multiprocessing, so that it works whatever the caller's main module is.)
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> ReceiverProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from bench.e2e import receiver_main; receiver_main()"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError(f"the receiver process did not start within 30 s: {line!r}")
        self.port = int(line)
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def count(self, session: aiohttp.ClientSession, run: str) -> int:
        async with session.get(self.url + CONTROL + "/count", params={"run": run}) as response:
            return int((await response.json())["unique"])

    async def results(self, session: aiohttp.ClientSession, run: str) -> list[Record]:
        async with session.get(self.url + CONTROL + "/results", params={"run": run}) as response:
            return [tuple(r) for r in orjson.loads(await response.read())]

    async def wait_for(
        self, session: aiohttp.ClientSession, run: str, expected: int, deadline: Callable[[], float]
    ) -> int:
        """Polls until `expected` distinct pairs of the run arrived or time.monotonic() passes deadline()."""
        reported = time.monotonic()
        while True:
            count = await self.count(session, run)
            if count >= expected or time.monotonic() > deadline():
                return count
            if time.monotonic() - reported > 5:
                progress(f"{run}: {count}/{expected} arrived")
                reported = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)


# -- measuring ------------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest sample with at least p % of the samples at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def first_arrivals(records: list[Record]) -> dict[tuple[int, str], Record]:
    first: dict[tuple[int, str], Record] = {}
    for record in records:
        key = (record[1], record[3])
        if key not in first or record[0] < first[key][0]:
            first[key] = record
    return first


def postgres_backends(database_url: str) -> list[int]:
    """The pids of the PostgreSQL backends connected to the run's database (same machine)."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(POSTGRES + "/postgres", autocommit=True) as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [int(pid) for (pid,) in rows]


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """The process's high-water resident set (VmHWM), Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def wait_idle(pids: Sequence[int], timeout: float = 30.0, window: float = 0.5, busy: float = 0.15) -> None:
    """Until each process used under `busy` of a core over `window` s: workers start (imports, the
    application) after `serve` answers /healthz, and a run must not time their start-up."""
    deadline = time.monotonic() + timeout
    before = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
    while time.monotonic() < deadline:
        time.sleep(window)
        after = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
        if all(after[pid] - before[pid] < busy * window for pid in pids):
            return
        before = after
    progress(f"processes still busy after {timeout} s; measuring anyway")


@dataclass
class Published:
    started: float  # time.time() when the first publish request was stamped
    finished: float = 0.0  # time.time() when the last publish request returned
    request_seconds: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    max_lag: float | None = None

    def failed(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what[:500]


class Publisher:
    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session = session
        self.url = url + "/graphql"
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def post(self, query: str, variables: dict[str, Any], count: int, published: Published) -> None:
        body = orjson.dumps({"query": query, "variables": variables})
        began = time.perf_counter()
        try:
            async with self.session.post(self.url, data=body, headers=self.headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            published.failed(f"{type(error).__name__}: {error}")
            return
        finally:
            published.request_seconds.append(time.perf_counter() - began)
            published.finished = max(published.finished, time.time())
        try:
            result = orjson.loads(raw)
        except orjson.JSONDecodeError:
            published.failed(f"HTTP {status}: {raw[:300]!r}")
            return
        if status != 200 or result.get("errors"):
            published.failed(f"HTTP {status}: {orjson.dumps(result.get('errors'))[:300].decode()}")
            return
        answers = next(iter((result.get("data") or {}).values()), None)
        if len(answers if isinstance(answers, list) else [answers] if answers else []) != count:
            published.failed(f"{count} events sent, answer: {raw[:300]!r}")

    async def saturated(self, run: str, events: int, batch: int, concurrency: int) -> Published:
        """`publishEvents`, `batch` events a request, `concurrency` requests in flight."""
        published = Published(started=time.time())
        firsts = iter(range(0, events, batch))

        async def loop() -> None:
            for first in firsts:
                count = min(batch, events - first)
                sent_at = time.time()
                inputs = [
                    {"type": EVENT_TYPE, "payload": payload(first + k, run, sent_at)} for k in range(count)
                ]
                await self.post(PUBLISH_MANY, {"input": inputs}, count, published)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return published

    async def fixed_rate(self, run: str, events: int, rate: float, concurrency: int) -> Published:
        """`publishEvent`, one event started every 1/rate s, at most `concurrency` in flight."""
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(concurrency)
        published = Published(started=time.time(), max_lag=0.0)
        begin = loop.time()
        tasks: set[asyncio.Task[None]] = set()

        async def one(seq: int) -> None:
            try:
                data = payload(seq, run, time.time())
                await self.post(PUBLISH_ONE, {"input": {"type": EVENT_TYPE, "payload": data}}, 1, published)
            finally:
                slots.release()

        for seq in range(events):
            due = begin + seq / rate
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            published.max_lag = max(published.max_lag or 0.0, loop.time() - due)
            task = asyncio.create_task(one(seq))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*tasks)
        return published


async def raw_ceiling(
    receiver: ReceiverProcess, requests: int, concurrency: int, wait_seconds: float
) -> dict[str, Any]:
    """One ClientSession posting Hookline's bodies to the receiver, `concurrency` in flight."""
    organization_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Hookline/raw",
        "webhook-id": str(uuid.uuid4()),
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 43 + "=",
    }
    url = receiver.url + "/raw"
    errors = 0

    async def post_all(session: aiohttp.ClientSession, run: str, n: int) -> None:
        nonlocal errors
        sequence = iter(range(n))

        async def loop() -> None:
            nonlocal errors
            for seq in sequence:
                body = envelope(seq, run, time.time(), organization_id)
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    errors += response.status != 200

        await asyncio.gather(*(loop() for _ in range(min(concurrency, n))))

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await post_all(session, "raw-warmup", concurrency)
        run = f"raw-{uuid.uuid4().hex[:8]}"
        started = time.time()
        await post_all(session, run, requests)
        deadline = time.monotonic() + wait_seconds
        arrived = await receiver.wait_for(session, run, requests, lambda: deadline)
        records = await receiver.results(session, run)
    if errors or arrived < requests:
        raise RuntimeError(f"raw ceiling: {errors} errors, {arrived}/{requests} arrived")
    latencies = sorted(r[0] - r[2] for r in first_arrivals(records).values())
    last = max(r[0] for r in records)
    return {
        "raw_requests": requests,
        "raw_per_s": round(requests / (last - started), 1),
        "raw_latency_p50_ms": ms(percentile(latencies, 50)),
        "raw_latency_p99_ms": ms(percentile(latencies, 99)),
    }


# -- one Hookline run -----------------------------------------------------------------------------


@dataclass
class Options:
    mode: str = "embedded"  # or "distributed"
    workers: int = 1  # distributed only
    events: int = 3000  # ignored at a fixed rate: rate x duration
    webhooks: int = 1
    batch: int = 100
    concurrency: int = 8  # publish requests in flight
    rate: float = 0.0  # events/s; 0 = saturated
    duration: float = 30.0  # seconds, at a fixed rate
    timeout: float = 300.0  # seconds to wait for arrivals after the last publish returned
    delivery_concurrency: int = 64  # HOOKLINE_DELIVERY_CONCURRENCY, and the raw client's requests in flight
    keep: bool = False  # keep the server's directory (logs, SQLite store)
    redis_url: str | None = None  # distributed: None = a private redis-server for the run

    @property
    def total_events(self) -> int:
        return round(self.rate * self.duration) if self.rate > 0 else self.events

    @property
    def expected(self) -> int:
        return self.total_events * self.webhooks


@dataclass
class Hookline:
    server: Server
    admin: str
    publisher: str
    database_url: str | None  # distributed: the run's PostgreSQL database
    service_pids: dict[str, int]  # distributed: {"redis": pid} of the private redis-server

    @property
    def pids(self) -> dict[str, int]:
        assert self.server.process is not None
        pids = {"serve": self.server.process.pid}
        for n, worker in enumerate(self.server.worker_processes):
            pids[f"worker-{n}"] = worker.pid
        return pids


@contextmanager
def hookline(options: Options, receiver: ReceiverProcess) -> Iterator[Hookline]:
    """A started Hookline (serve, and workers when distributed) with keys and the run's webhooks."""
    settings = {
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
        "HOOKLINE_LOG_LEVEL": "warning",
        "HOOKLINE_DELIVERY_CONCURRENCY": str(options.delivery_concurrency),
    }
    distributed = options.mode == "distributed"
    services = distributed_env(settings, options.redis_url) if distributed else embedded_env(settings)
    with services as (environment, service_pids):
        workers = options.workers if distributed else 0
        directory = Path(tempfile.mkdtemp(prefix="hookline-e2e-"))
        progress(f"starting hookline serve ({options.mode}, {workers} workers) in {directory}")
        # Workers are started here rather than by Server.start(), which waits for their "worker ready"
        # line, logged at info: under HOOKLINE_LOG_LEVEL=warning it never comes.
        server = Server(directory=directory, env=environment)
        try:
            server.start()
            start_workers(server, workers)
            admin = server.key("bench", "admin")
            publisher = server.key("bench", "publisher")
            for n in range(options.webhooks):
                webhook = {
                    "name": f"Bench {n}",
                    "eventTypes": [EVENT_TYPE],
                    "targetUrl": f"{receiver.url}/hook/{n}",
                }
                server.gql(admin, CREATE_WEBHOOK, {"input": webhook}).ok()
            progress(f"keys and {options.webhooks} webhooks created")
            yield Hookline(server, admin, publisher, environment.get("HOOKLINE_DATABASE_URL"), service_pids)
        except BaseException:
            progress(f"the run failed; the server's logs stay in {directory}")
            raise
        finally:
            progress("stopping hookline")
            if server.process is not None:
                server.stop()


def start_workers(server: Server, count: int, timeout: float = 60.0) -> None:
    """`count` workers, waited for until each holds a connection to the database (it has built its
    application: what comes after is quick) and has gone quiet (wait_idle, later)."""
    for _ in range(count):
        server.start_worker()
    server.workers = count
    port = urlsplit(server.env["HOOKLINE_DATABASE_URL"]).port or 5432 if count else 0
    deadline = time.monotonic() + timeout
    waiting = list(server.worker_processes)
    while waiting:
        for n, worker in enumerate(server.worker_processes):
            if worker.poll() is not None:
                log = (server.directory / f"worker-{n}.log").read_text(errors="replace")
                raise RuntimeError(f"worker-{n} exited ({worker.returncode}): {log[-2000:]}")
        waiting = [w for w in waiting if not connected_to(w.pid, port)]
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} workers not connected to the database after {timeout} s")
        time.sleep(0.1)


def connected_to(pid: int, port: int) -> bool:
    """Whether the process has an established TCP connection to `port` (Linux: /proc)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        return False
    for table in ("tcp", "tcp6"):
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                established = fields[3] == "01"
                if established and int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    return True
    return False


@contextmanager
def embedded_env(settings: dict[str, str]) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """The SQLite store in the server's directory (the default ./var/hookline.sqlite3)."""
    yield server_env(HOOKLINE_SECRET_KEY=SECRET_KEY, **settings), {}


@contextmanager
def distributed_env(
    settings: dict[str, str], redis_url: str | None
) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """A PostgreSQL database of the run's own (tests.support.postgres_database) and a Redis of its own.

    Not tests.support.distributed_env: its Redis db index (1-15, counted per process, flushed before
    and after use) is shared with every other process using it on this Redis, the test suite included,
    and their workers then take this run's jobs. Unless --redis-url is given, a private redis-server
    runs on a free port for the run. HOOKLINE_SWEEP_SECONDS is left at its production default.
    """
    with postgres_database() as database, private_redis() if redis_url is None else nullcontext(None) as own:
        redis, pids = (own[0], {"redis": own[1]}) if own else (str(redis_url), {})
        environment = server_env(
            HOOKLINE_DATABASE_URL=database,
            HOOKLINE_REDIS_URL=redis,
            HOOKLINE_SECRET_KEY=SECRET_KEY,
            **settings,
        )
        yield environment, pids


@contextmanager
def private_redis(timeout: float = 10.0) -> Iterator[tuple[str, int]]:
    """A redis-server of the run's own on a free port, without persistence; its URL and pid."""
    import redis

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hookline-e2e-redis-") as directory:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
        command += ["--appendonly", "no", "--dir", directory, "--logfile", str(Path(directory) / "redis.log")]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on port {port}") from None
                    time.sleep(0.05)
            client.close()
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(10)


def log_errors(directory: Path) -> tuple[dict[str, int], str | None]:
    """Lines at level error or above in each log of the server's directory, and the first one."""
    counts: dict[str, int] = {}
    first: str | None = None
    for path in sorted(directory.glob("*.log")):
        count = 0
        for line in path.read_text(errors="replace").splitlines():
            try:
                level = str(json.loads(line).get("level", ""))
            except (ValueError, AttributeError):
                level = "error" if "Traceback" in line or "Error" in line else ""
            if level in ("error", "critical", "exception"):
                count += 1
                if first is None:
                    first = f"{path.name}: {line[:1000]}"
        counts[path.name] = count
    return counts, first


async def measure(options: Options, receiver: ReceiverProcess, target: Hookline) -> dict[str, Any]:
    server = target.server
    connector = aiohttp.TCPConnector(limit=options.concurrency + 4)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        publisher = Publisher(session, server.url, target.publisher)

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
        pids = {**target.pids, "receiver": receiver.pid, **target.service_pids}
        if target.database_url:  # the run's PostgreSQL backends, as one
            pids.update({f"postgres-{pid}": pid for pid in postgres_backends(target.database_url)})
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
    statuses, settled = delivery_statuses(target, last_arrival)

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
        "publish_request_p50_ms": ms(percentile(requests, 50)),
        "publish_request_p99_ms": ms(percentile(requests, 99)),
        "max_schedule_lag_ms": ms(published.max_lag),
        "duration_s": round(duration, 3),
        "deliveries_per_s": round(arrived / duration, 1) if duration > 0 else None,
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p95_ms": ms(percentile(latencies, 95)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "latency_max_ms": ms(latencies[-1] if latencies else None),
        "cpu_s": {**cpu, "bench": round(bench_cpu, 2)},
        "cpu_ms_per_delivery": cpu_per_delivery(cpu, arrived),
        "delivery_statuses": statuses,
        "settled_s": settled,
        "warmup_s": warmup_s,
    }


def cpu_per_delivery(cpu: dict[str, float], deliveries: int) -> float | None:
    """CPU ms that Hookline's processes, and its Redis and PostgreSQL, spent per delivery: a figure
    that other work on the machine changes far less than it changes deliveries/s."""
    spent = sum(seconds for name, seconds in cpu.items() if name not in ("receiver", "bench"))
    return round(spent * 1000 / deliveries, 2) if deliveries else None


def delivery_statuses(target: Hookline, last_arrival: float) -> tuple[dict[str, int] | None, float | None]:
    """Deliveries by status in the read model (warm-up included), polled until none is PENDING or
    RETRYING (at most SETTLE_SECONDS), and how long after the last arrival that was (None: never)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    counts: dict[str, int] | None = None
    while True:
        answer = target.server.gql(target.admin, STATUS_COUNTS)
        if answer.errors:
            return None, None
        counts = {status: answer.data[status]["totalCount"] for status in STATUSES}
        if counts["PENDING"] == counts["RETRYING"] == 0:
            return counts, round(max(0.0, time.time() - last_arrival), 2)
        if time.monotonic() > deadline:
            return counts, None
        time.sleep(0.2)


def targets(result: dict[str, Any], options: Options) -> dict[str, bool]:
    met: dict[str, bool] = {}
    per_s, ratio = result.get("deliveries_per_s") or 0.0, result.get("ratio") or 0.0
    if options.rate <= 0 and options.webhooks == 1:
        met[f"deliveries_per_s>={TARGET_SATURATED_PER_S:g}"] = per_s >= TARGET_SATURATED_PER_S
        met[f"ratio>={TARGET_RATIO_ONE:g}"] = ratio >= TARGET_RATIO_ONE
    elif options.rate <= 0:
        met[f"ratio>={TARGET_RATIO_FAN_OUT:g}"] = ratio >= TARGET_RATIO_FAN_OUT
    else:
        p99 = result.get("latency_p99_ms")
        met[f"latency_p99_ms<{TARGET_FIXED_P99_MS:g}"] = p99 is not None and p99 < TARGET_FIXED_P99_MS
    serve_rss = result["peak_rss_mb"].get("serve")
    if result["deliveries"] >= TARGET_RSS_AFTER_DELIVERIES:
        met[f"serve_peak_rss_mb<{TARGET_SERVE_RSS_MB:g}"] = (
            serve_rss is not None and serve_rss < TARGET_SERVE_RSS_MB
        )
    return met


def git_state() -> dict[str, Any]:
    """The commit the code was at, and whether tracked files differed from it (None: not a checkout)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(changed)}


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
    progress(f"raw ceiling: {options.expected} requests, {options.delivery_concurrency} in flight")
    raw = run_async(raw_ceiling(receiver, options.expected, options.delivery_concurrency, options.timeout))
    progress(f"raw ceiling: {raw['raw_per_s']}/s")
    directory: Path | None = None
    with hookline(options, receiver) as target:
        directory = target.server.directory
        wait_idle(list(target.pids.values()))
        progress("hookline is idle; warming up")
        measured = run_async(measure(options, receiver, target))
        peak = {name: peak_rss_mb(pid) for name, pid in target.pids.items()}
        processes = [target.server.process, *target.server.worker_processes]
        alive = {
            name: p is not None and p.poll() is None for name, p in zip(target.pids, processes, strict=True)
        }
    errors, first_error = log_errors(directory)
    result: dict[str, Any] = {
        "mode": options.mode,
        "workers": options.workers if options.mode == "distributed" else 0,
        "events": options.total_events,
        "webhooks": options.webhooks,
        "batch": options.batch if options.rate <= 0 else None,
        "concurrency": options.concurrency,
        "rate": options.rate or None,
        "delivery_concurrency": options.delivery_concurrency,
        **measured,
        **raw,
        "ratio": round(measured["deliveries_per_s"] / raw["raw_per_s"], 3)
        if measured["deliveries_per_s"]
        else None,
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
    result.update(
        python=platform.python_version(),
        cpus=os.cpu_count(),
        loop=loop_name(),
        loadavg_1m={"start": load_start, "end": round(os.getloadavg()[0], 2)},
        **git_state(),
    )
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
        "targets": {f"speedup>={TARGET_SPEEDUP:g}": speedup is not None and speedup >= TARGET_SPEEDUP},
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
    parser.add_argument("--webhooks", type=int, default=defaults.webhooks, help="matching webhooks per event")
    parser.add_argument("--batch", type=int, default=defaults.batch, help="events per publishEvents request")
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="publish requests in flight"
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
    if min(args.events, args.webhooks, args.concurrency, args.delivery_concurrency) < 1:
        parser.error("--events, --webhooks, --concurrency and --delivery-concurrency must be at least 1")
    if args.rate < 0 or (args.rate > 0 and args.rate * args.duration < 1):
        parser.error("--rate must be 0 (saturated) or give at least one event over --duration")
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
