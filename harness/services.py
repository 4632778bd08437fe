"""The services the distributed mode runs on, for tests and benchmarks: a PostgreSQL database of one's
own on the machine's server, a private `redis-server`, and Redis db indexes handed out one user at a time."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.server import Server, free_port, server_env, wait_until

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"  # the test session points this at a private server (use_redis)
REDIS_DATABASES = 64
_free_redis_indexes = list(range(1, REDIS_DATABASES))  # a db index is held by one user at a time


class RedisServer:
    """A `redis-server` of our own on a free port, without persistence, so that no other run shares its
    queues (nor takes its jobs); stopped with the context, or for a while (`stop`, then `start`)."""

    def __init__(self, directory: Path, timeout: float = 10.0) -> None:
        self.directory = directory
        self.timeout = timeout
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> RedisServer:
        return self.start()

    def start(self) -> RedisServer:
        """Starts the server (again, after `stop`, on the same port)."""
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--databases",  # the default 16 is fewer than the servers a test session holds at once
                str(REDIS_DATABASES),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: self._running() and _pings(redis.Redis.from_url(self.url)), self.timeout)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def _running(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited ({self.process.returncode}) on port {self.port}")
        return True


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """The URL of a RedisServer in `directory`."""
    with RedisServer(directory) as server:
        yield server.url


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # not up yet
        return False
    finally:
        client.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of its own for one test (or one shared server), dropped afterwards."""
    import psycopg

    name = f"hookline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(POSTGRES + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def use_redis(url: str) -> None:
    """Where redis_database hands out db indexes from: one Redis for a whole test session."""
    global REDIS  # the session's one setting, made by conftest before any test runs
    REDIS = url


def redis_base() -> str:
    return REDIS


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis db index of its own (emptied before and after use, and not handed out meanwhile)."""
    import redis

    index = _free_redis_indexes.pop(0)
    url = f"{redis_base()}/{index}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        _free_redis_indexes.append(index)


@contextmanager
def distributed_env(**overrides: str) -> Iterator[dict[str, str]]:
    """The environment of a distributed server for tests: a database and a Redis db index of its own,
    a sweep every second (tests wait for retries), and small pools (many servers run side by side)."""
    with postgres_database() as database, redis_database() as redis_url:
        defaults = {
            "HOOKLINE_DATABASE_URL": database,
            "HOOKLINE_REDIS_URL": redis_url,
            "HOOKLINE_SECRET_KEY": "test-passphrase-for-the-distributed-store",
            "HOOKLINE_SWEEP_SECONDS": "1",
            "HOOKLINE_DATABASE_POOL_SIZE": "3",
        }
        yield server_env(**{**defaults, **overrides})


@contextmanager
def running_server(directory: Path, mode: str, *, workers: int = 2, **env: str) -> Iterator[Server]:
    """A real `hookline serve` in `mode` ("embedded", or "distributed" with PostgreSQL, Redis and
    `workers` workers) with `env` over the mode's defaults; stopped whatever happens, also when it
    fails to start, so that no process outlives its test."""
    if mode == "embedded":
        server = Server(directory=directory, env=server_env(**env))
        try:
            yield server.start()
        finally:
            server.stop()
        return
    with distributed_env(**env) as environment:
        server = Server(directory=directory, env=environment, workers=workers)
        try:
            yield server.start()
        finally:
            server.stop()
