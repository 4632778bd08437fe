"""A server on 127.0.0.1 whose event loop runs in a thread of its own, so that a synchronous test can
start it with `with` and talk to it while it runs."""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from harness.server import free_port


class ThreadedServer:
    """Subclasses open their server on `self.port` in `open` and close it in `close`."""

    scheme = "http"

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._started.wait(10), f"{type(self).__name__} did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.open())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.close())
        pending = asyncio.all_tasks(self._loop)  # handlers still at work: a client that never left
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()
