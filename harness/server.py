"""A real `hookline serve` (and its `hookline worker`s) in subprocesses, driven through the real CLI and
GraphQL over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
HOOKLINE = str(BIN / "hookline")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class GraphQLResult(dict[str, Any]):
    @property
    def data(self) -> Any:
        return self.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.get("errors") or [])

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    @property
    def fields(self) -> list[str]:
        return [f["field"] for e in self.errors for f in e.get("extensions", {}).get("fields", [])]

    def ok(self) -> Any:
        assert not self.errors, self.errors
        return self.data


@dataclass
class Server:
    """A real `hookline serve` on a free port, in a directory of its own, and in distributed mode
    (`workers` > 0, with HOOKLINE_DATABASE_URL and HOOKLINE_REDIS_URL in `env`) its `hookline worker`s."""

    directory: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    workers: int = 0
    worker_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "distributed" if self.workers else "embedded"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log = open(self.directory / "serve.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [HOOKLINE, "serve", "--port", str(self.port)],
            cwd=self.directory,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout=20)
        for _ in range(self.workers):
            self.start_worker()
        if self.workers:
            self.wait_for_workers()
        return self

    def wait_for_workers(self, timeout: float = 30.0) -> None:
        """Until every worker has opened its resources (it logs "worker ready")."""
        logs = [self.directory / f"worker-{i}.log" for i in range(len(self.worker_processes))]

        def ready() -> bool:
            for process, log in zip(self.worker_processes, logs, strict=True):
                if process.poll() is not None:
                    raise AssertionError(f"worker exited: {log.read_text(errors='replace')}")
            return all(log.exists() and "worker ready" in log.read_text(errors="replace") for log in logs)

        wait_until(ready, timeout)

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.directory / f"worker-{len(self.worker_processes)}.log"
        with log.open("ab") as sink:
            worker = subprocess.Popen(
                [HOOKLINE, "worker"], cwd=self.directory, env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        self.worker_processes.append(worker)
        return worker

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited: {self.output()}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        for process in [*self.worker_processes, self.process]:
            if process and process.poll() is None:
                process.terminate()
        for process in [*self.worker_processes, self.process]:
            if process is None:
                continue
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.worker_processes = []
        if hasattr(self, "log"):
            self.log.close()

    def output(self) -> str:
        return (self.directory / "serve.log").read_text(errors="replace")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HOOKLINE, *args], cwd=self.directory, env=self.env, capture_output=True, text=True
        )

    def key(self, org: str, role: str) -> str:
        result = self.cli("keys", "create", "--org", org, "--role", role)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        return lines[0]

    def gql(
        self,
        key: str | None,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> GraphQLResult:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url + "/graphql", body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return GraphQLResult(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        if status >= 500:
            raise AssertionError(f"HTTP {status} from the gateway: {payload!r}")
        return GraphQLResult(json.loads(payload))


def server_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env.update(overrides)
    return env
