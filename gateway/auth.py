"""API keys on requests: `Authorization: Bearer <key>` (or, where a source system offers only a user name
and password, HTTP Basic with the key as the password), checked against the store with a short cache."""

from __future__ import annotations

import asyncio
import base64
import binascii
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


def basic_password(authorization: str | None) -> str | None:
    """The password of `Authorization: Basic base64(user:password)`, whatever the user name."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


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

    async def principal(self, authorization: str | None, *, basic: bool = False) -> Principal:
        """`basic`: HTTP Basic is accepted too (plain-HTTP publishing), the key as the password."""
        key = bearer_key(authorization) or (basic_password(authorization) if basic else None)
        if key is None:
            accepted = "Bearer <key>, or Basic with the key as the password" if basic else "Bearer <key>"
            raise Unauthenticated(f"an API key is required: Authorization: {accepted}")
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
