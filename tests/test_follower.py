"""serve's log follower: saves made close together are applied in one batch, not one each."""

from __future__ import annotations

import asyncio
import threading

from hookline.runtime import FOLLOW_GATHER, follow


class CountingViews:
    """Stands in for the read model: counts the catch-ups and what each found waiting."""

    def __init__(self) -> None:
        self.saved = 0
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def catch_up(self) -> None:
        with self.lock:
            self.batches.append(self.saved - sum(self.batches))


def test_saves_within_the_gather_window_are_applied_in_one_catch_up() -> None:
    async def scenario() -> list[int]:
        views = CountingViews()
        wake = asyncio.Event()
        follower = asyncio.create_task(follow(views, wake, idle_seconds=60))
        await asyncio.sleep(0.05)  # started, waiting
        for _ in range(5):  # five saves, a millisecond apart, as a burst of one delivery's events
            views.saved += 1
            wake.set()
            await asyncio.sleep(FOLLOW_GATHER / 10)
        await asyncio.sleep(FOLLOW_GATHER * 5)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        return views.batches

    batches = asyncio.run(scenario())
    assert sum(batches) == 5
    assert len(batches) <= 2  # one per save without the window
