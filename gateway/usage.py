"""When each API key was last used (`ApiKey.lastUsedAt`): noted in memory whenever a key is accepted,
which costs a request one dictionary write, and written out by a flush every second, but only when
it is at least `every` seconds (a minute) later than the key's last use written: `lastUsedAt` moves
at most once a minute and is never more than a minute behind. A key's first use is written at the
next flush, so a new key shows it at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog

log = structlog.get_logger("hookline.gateway")

EVERY_SECONDS = 60.0
FLUSH_SECONDS = 1.0

# Writes each key's last use, keeping a stored one unless it is `every` older than the new one.
Write = Callable[[Mapping[UUID, datetime], timedelta], None]
# The stored last use of each of these keys that has one.
Read = Callable[[Sequence[UUID]], Mapping[UUID, datetime]]


class KeyUsage:
    def __init__(
        self,
        write: Write,
        read: Read,
        *,
        every: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._write = write
        self._read = read
        self.every = every
        self._clock = clock
        self._pending: dict[UUID, float] = {}  # key → its latest use since the last flush
        self._written: dict[UUID, float] = {}  # key → its last use written from here

    def used(self, key_id: UUID) -> None:
        """On every accepted request: only remembered here."""
        self._pending[key_id] = self._clock()

    def due(self) -> dict[UUID, datetime]:
        """The uses to write now, each at least `every` after its key's last one written; the others
        are dropped (`lastUsedAt` is within a minute of them)."""
        pending, self._pending = self._pending, {}
        due = {
            key_id: used
            for key_id, used in pending.items()
            if used - self._written.get(key_id, float("-inf")) >= self.every
        }
        self._written.update(due)
        return {key_id: datetime.fromtimestamp(used, UTC) for key_id, used in due.items()}

    async def flush(self) -> None:
        due = self.due()
        if due:
            await asyncio.to_thread(self._write, due, timedelta(seconds=self.every))

    async def last_used(self, key_ids: Sequence[UUID]) -> Mapping[UUID, datetime]:
        return await asyncio.to_thread(self._read, key_ids) if key_ids else {}

    @asynccontextmanager
    async def flushing(self, every: float = FLUSH_SECONDS) -> AsyncIterator[None]:
        """Flushes every `every` seconds while the server runs, and once more when it stops."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    await self.flush()
                except Exception:  # the store did not answer: these uses are lost, later ones are not
                    log.warning("could not record when API keys were last used", exc_info=True)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            try:
                await self.flush()
            except Exception:
                log.warning("could not record when API keys were last used", exc_info=True)
