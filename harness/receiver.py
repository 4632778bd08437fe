"""A real webhook receiver for tests: an aiohttp server on 127.0.0.1, in a thread, recording every request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from harness.server import free_port, wait_until


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """An aiohttp server on 127.0.0.1 in a thread of its own, recording every request it gets.

    `respond` decides each answer from the request count (status, headers, body); 200 by default.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Received] = []
        self.respond: Callable[[Received], tuple[int, dict[str, str], str]] = lambda _: (
            200,
            {},
            "ok",
        )
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(
            method=request.method,
            path=request.path_qs,
            headers=dict(request.headers),
            body=await request.read(),
            at=time.monotonic(),
        )
        self.requests.append(received)
        status, headers, text = self.respond(received)
        return web.Response(status=status, headers=headers, text=text)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        wait_until(lambda: len(self.requests) >= count, timeout)
        return self.requests
