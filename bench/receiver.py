"""The end-to-end benchmark's receiver: a process of its own (aiohttp on 127.0.0.1) that answers every
POST with 200 at once and records, per request, its arrival time, path, event id, and the payload's `seq`
and `sent_at`; the benchmark reads the records back over HTTP (`python -m bench.receiver` runs it)."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable

import aiohttp
import orjson
from aiohttp import web

from bench.loop import run_async
from bench.report import ROOT, progress

CONTROL = "/_bench"
POLL_SECONDS = 0.05

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


async def serve() -> None:
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


class ReceiverProcess:
    """`python -m bench.receiver` in a process of its own, ended with the context: receiving must not slow
    the publisher's event loop, and its CPU is counted apart.

    (A subprocess rather than multiprocessing, so that it works whatever the caller's main module is.)
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> ReceiverProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver"], cwd=ROOT, stdout=subprocess.PIPE
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


def first_arrivals(records: list[Record]) -> dict[tuple[int, str], Record]:
    """The first arrival of each (seq, path) pair: a retried delivery is counted once, when it came."""
    first: dict[tuple[int, str], Record] = {}
    for record in records:
        key = (record[1], record[3])
        if key not in first or record[0] < first[key][0]:
            first[key] = record
    return first


if __name__ == "__main__":
    run_async(serve())
