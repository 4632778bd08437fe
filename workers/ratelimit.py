"""Per-webhook rate limits: at most N requests in any one-second window.

A request over the limit is not dropped and does not wait in a worker slot: the caller is told how long
to wait, and its job runs again then, so other webhooks' deliveries keep flowing meanwhile.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID, uuid4

# Requests are counted over a little more than the one second they are limited in (a fifth): between the
# limiter letting a request go and its arrival at the target lie tens of milliseconds that vary
# (new connection or pooled one, scheduling), and the target counts arrivals.
WINDOW = 1.2


class RateLimiter(Protocol):
    async def acquire(self, key: UUID, limit: int) -> float:
        """0 when a request may go now (and it is counted); else the seconds to wait before asking again."""
        ...


class LocalRateLimiter:
    """A sliding-window log per webhook, for one process (the embedded mode)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._sent: dict[UUID, deque[float]] = {}

    async def acquire(self, key: UUID, limit: int) -> float:
        now = self.clock()
        window = self._sent.setdefault(key, deque())
        while window and now - window[0] >= WINDOW:
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return 0.0
        return window[0] + WINDOW - now


# Sliding-window log in a sorted set, checked and updated in one step so that all workers share it.
_ACQUIRE = """
local key, member = KEYS[1], ARGV[4]
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RedisRateLimiter:
    """The same limit across every worker: atomic in Redis, timed by Redis's own clock."""

    def __init__(self, redis: Any, prefix: str = "hookline:rate:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_ACQUIRE)

    async def acquire(self, key: UUID, limit: int) -> float:
        seconds, micros = await self.redis.time()
        now = seconds + micros / 1_000_000
        member = f"{now}:{uuid4().hex}"
        wait = await self._script(keys=[self.prefix + key.hex], args=[now, WINDOW, limit, member])
        return max(float(wait), 0.0)
