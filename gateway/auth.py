"""API keys on requests: `Authorization: Bearer <key>`, checked against the store with a short cache."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from uuid import UUID

from domain.errors import Unauthenticated
from domain.roles import Principal

# A revoked key is refused within this (plus a socket's next check): inside the 5 s the contract promises.
CACHE_SECONDS = 3.0
CACHE_SIZE = 10_000


def bearer_key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


class Authenticator:
    """Turns a presented key into a principal; a key that was revoked stops working within seconds.
    `used` is told the id of every key it accepts (a request, or an open socket's check)."""

    def __init__(
        self,
        authenticate: Callable[[str], Principal],
        clock: Callable[[], float] = time.monotonic,
        used: Callable[[UUID], None] = lambda _: None,
    ) -> None:
        self._authenticate = authenticate
        self._clock = clock
        self._used = used
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def principal(self, authorization: str | None) -> Principal:
        key = bearer_key(authorization)
        if key is None:
            raise Unauthenticated("an API key is required: Authorization: Bearer <key>")
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached and cached[0] > now:
            principal = cached[1]
        else:
            principal = await asyncio.to_thread(self._authenticate, key)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_SECONDS, principal)
        self._used(principal.key_id)
        return principal
