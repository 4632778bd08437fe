"""A forward HTTP proxy for tests, on 127.0.0.1 in a thread of its own, recording what passed through it.

It serves the two ways a client uses a proxy: `CONNECT host:port` (a tunnel, for https; recorded as
`CONNECT host:port`) and a request in absolute form (`POST http://host:port/path`, recorded as
`POST http://host:port/path`). Each connection carries one request or tunnel (it asks the upstream to
close after answering), so that every request the client makes is seen here.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from harness.server import wait_until
from harness.threaded import ThreadedServer


class Proxy(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.passed: list[str] = []

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        wait_until(lambda: len(self.passed) >= count, timeout)
        return self.passed

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        self._server.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            head = await client_reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            client_writer.close()
            return
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        self.passed.append(f"{method} {target}")
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            client_writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await client_writer.drain()
        else:
            url = urlsplit(target)
            upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname, url.port or 80)
            path = url.path or "/"
            kept = [
                line
                for line in header_lines
                if line and not line.lower().startswith(("connection:", "proxy-connection:", "keep-alive:"))
            ]
            origin_form = f"{method} {path}{'?' + url.query if url.query else ''} {version}"
            upstream_writer.write(
                "\r\n".join([origin_form, *kept, "Connection: close", "", ""]).encode("latin-1")
            )
        await asyncio.gather(
            _pipe(client_reader, upstream_writer),
            _pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()
