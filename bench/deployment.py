"""The Hookline a benchmark measures: `hookline serve` (embedded: SQLite in a temporary directory;
distributed: PostgreSQL, a Redis of the run's own and `hookline worker`s), its keys and the run's
webhooks, each at its own path of the receiver."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.options import Options
from bench.processes import connected_to
from bench.publisher import EVENT_TYPE
from bench.receiver import ReceiverProcess
from bench.report import progress
from harness.server import Server, server_env
from harness.services import RedisServer, postgres_database

SECRET_KEY = "hookline-e2e-bench-not-a-secret"  # noqa: S105 - the store is thrown away
CREATE_WEBHOOK = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { id } }"


@dataclass
class Deployment:
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
def deployed(options: Options, receiver: ReceiverProcess) -> Iterator[Deployment]:
    """A started Hookline (serve, and workers when distributed) with keys and the run's webhooks."""
    settings = {
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
        "HOOKLINE_LOG_LEVEL": "warning",
        "HOOKLINE_DELIVERY_CONCURRENCY": str(options.delivery_concurrency),
    }
    distributed = options.mode == "distributed"
    services = (
        distributed_services(settings, options.redis_url) if distributed else embedded_services(settings)
    )
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
            database_url = environment.get("HOOKLINE_DATABASE_URL")
            yield Deployment(server, admin, publisher, database_url, service_pids)
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


Services = Iterator[tuple[dict[str, str], dict[str, int]]]
"""The server's environment, and {name: pid} of the services it runs on that the run measures."""


@contextmanager
def embedded_services(settings: dict[str, str]) -> Services:
    """The SQLite store in the server's directory (the default ./var/hookline.sqlite3)."""
    yield server_env(HOOKLINE_SECRET_KEY=SECRET_KEY, **settings), {}


@contextmanager
def distributed_services(settings: dict[str, str], redis_url: str | None) -> Services:
    """A PostgreSQL database of the run's own and, unless `redis_url` is given, a private redis-server.

    Not harness.services.distributed_env: it hands out db indexes of the test session's Redis, whose
    other users' workers would take this run's jobs; and it sweeps every second, where a run keeps the
    production interval (HOOKLINE_SWEEP_SECONDS unset).
    """
    with postgres_database() as database, own_redis() if redis_url is None else nullcontext(None) as own:
        redis, pids = (f"{own.url}/0", {"redis": own.pid}) if own else (str(redis_url), {})
        environment = server_env(
            HOOKLINE_DATABASE_URL=database,
            HOOKLINE_REDIS_URL=redis,
            HOOKLINE_SECRET_KEY=SECRET_KEY,
            **settings,
        )
        yield environment, pids


@contextmanager
def own_redis() -> Iterator[RedisServer]:
    with (
        tempfile.TemporaryDirectory(prefix="hookline-e2e-redis-") as directory,
        RedisServer(Path(directory)) as server,
    ):
        yield server


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
