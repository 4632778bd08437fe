"""A real webhook receiver for tests: an aiohttp server on 127.0.0.1, in a thread, recording every request."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.server import wait_until
from harness.threaded import ThreadedServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    client_certificate: str | None = None  # over TLS, the common name of the client's certificate
    raw_headers: list[tuple[str, str]] = field(default_factory=list)  # as sent: repeats and case kept


class Receiver(ThreadedServer):
    """An aiohttp server on 127.0.0.1 in a thread of its own, recording every request it gets.

    `respond` decides each answer from the request count (status, headers, body); 200 by default;
    `hold_seconds` holds each answer back that many seconds. Given a TLS context, it serves https.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.hold_seconds = 0.0
        self.requests: list[Received] = []
        self.respond: Callable[[Received], tuple[int, dict[str, str], str]] = lambda _: (
            200,
            {},
            "ok",
        )

    async def open(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.tls).start()

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(
            method=request.method,
            path=request.path_qs,
            headers=dict(request.headers),
            raw_headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            body=await request.read(),
            at=time.monotonic(),
            client_certificate=_common_name(
                request.transport.get_extra_info("peercert") if request.transport else None
            ),
        )
        self.requests.append(received)
        if self.hold_seconds:
            await asyncio.sleep(self.hold_seconds)
        status, headers, text = self.respond(received)
        return web.Response(status=status, headers=headers, text=text)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        wait_until(lambda: len(self.requests) >= count, timeout)
        return self.requests


def _common_name(peer: dict[str, Any] | None) -> str | None:
    """The commonName in `ssl`'s description of a peer's certificate (`subject` is nested tuples)."""
    for entry in (peer or {}).get("subject", ()):
        for key, value in entry:
            if key == "commonName":
                return str(value)
    return None
