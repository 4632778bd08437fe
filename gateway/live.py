"""Live delivery status: one follower of the store fans updates out to every subscriber.

A subscriber registers first, then replays what the read model already holds after its cursor, then
continues with what arrives live, skipping anything at or before the last position it sent: no gap, no
repeat. A subscriber too slow to keep up is not dropped: it falls back to reading the table again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from uuid import UUID

from domain.deliveries import DeliveryUpdate

REPLAY_BATCH = 500
BUFFER = 1000

Replay = Callable[[UUID, UUID | None, int, int], list[DeliveryUpdate]]
"""Updates of an organisation (and webhook) after a position, at most so many."""
ReplayAll = Callable[[int, int], list[DeliveryUpdate]]
"""Updates of every organisation after a position, at most so many."""


@dataclass(eq=False)
class _Subscriber:
    organization_id: UUID
    webhook_id: UUID | None
    queue: asyncio.Queue[DeliveryUpdate] = field(default_factory=lambda: asyncio.Queue(BUFFER))
    lagging: bool = False

    def wants(self, update: DeliveryUpdate) -> bool:
        return update.organization_id == self.organization_id and (
            self.webhook_id is None or update.webhook_id == self.webhook_id
        )


class LiveUpdates:
    """Reads new updates from the read model once per batch the follower applied (whichever process
    applied it), and hands them to the subscribers they concern."""

    def __init__(self, replay: Replay, replay_all: ReplayAll, position: Callable[[], int]) -> None:
        self.replay = replay
        self.replay_all = replay_all
        self.position = position
        self._subscribers: set[_Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Thread-safe: the follower has applied more of the log."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Forwards new updates to the subscribers, for the life of the server."""
        self._loop = asyncio.get_running_loop()
        published = self.position()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._subscribers:
                published = self.position()
                continue
            while True:
                batch = await asyncio.to_thread(self.replay_all, published, REPLAY_BATCH)
                if not batch:
                    break
                published = batch[-1].position
                self._deliver(batch)

    def _deliver(self, updates: list[DeliveryUpdate]) -> None:
        for subscriber in self._subscribers:
            for update in updates:
                if subscriber.wants(update) and not subscriber.lagging:
                    try:
                        subscriber.queue.put_nowait(update)
                    except asyncio.QueueFull:
                        subscriber.lagging = True

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def follow(
        self, organization_id: UUID, webhook_id: UUID | None, after: int | None
    ) -> AsyncIterator[DeliveryUpdate]:
        subscriber = _Subscriber(organization_id, webhook_id)
        self._subscribers.add(subscriber)
        try:
            last = after if after is not None else self.position()
            while True:
                async for update in self._replay(subscriber, last):
                    last = update.position
                    yield update
                while not subscriber.lagging:
                    update = await subscriber.queue.get()
                    if update.position > last:
                        last = update.position
                        yield update
        finally:
            self._subscribers.discard(subscriber)

    async def _replay(self, subscriber: _Subscriber, after: int) -> AsyncIterator[DeliveryUpdate]:
        while not subscriber.queue.empty():  # what it holds is in the table too
            subscriber.queue.get_nowait()
        subscriber.lagging = False
        while True:
            batch = await asyncio.to_thread(
                self.replay, subscriber.organization_id, subscriber.webhook_id, after, REPLAY_BATCH
            )
            for update in batch:
                after = update.position
                yield update
            if len(batch) < REPLAY_BATCH:
                return
