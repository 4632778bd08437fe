"""Many small store writes made into few: jobs hand their write to a batcher and wait for it.

The store takes one writer at a time (SQLite) and each transaction has a fixed cost, so fanning out or
recording attempts one by one caps throughput. A batcher gathers what arrives within a few
milliseconds (or up to a count) and runs it as one call in a thread; each job resumes when its own
item is written, so a job still ends only once its outcome is in the store. A run may answer an item
with an exception instead of a result: that item's submitter gets it raised, the others their results.
With no wait (`max_wait=0`) nothing is held back: what arrives while a batch is being written goes in
the next one (group commit), so batches grow only when the store is the bottleneck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[Sequence[T]], Sequence[R | Exception]],
        *,
        max_items: int = 200,
        max_wait: float = 0.005,
    ) -> None:
        self.run = run
        self.max_items = max_items
        self.max_wait = max_wait
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_items:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            if self.max_wait > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
            else:
                await asyncio.sleep(0)  # what the same turn of the loop submits goes along
            self._full.clear()
            batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
            try:
                results = await asyncio.to_thread(self.run, [item for item, _ in batch])
            except Exception as error:  # every job of the batch learns that its write failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
