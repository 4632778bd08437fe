"""OAuth2 client-credentials tokens, one per grant, shared by every delivery that needs it.

A token is kept until its `expires_in` less 30 s; while one is being fetched, every other delivery
needing it waits for that same request (a burst costs one token request). A target that answers 401
makes its sender `forget` the token it used, once: the next `get` fetches a new one, and the other
deliveries that held the old one join that fetch rather than each starting their own.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from domain.credentials import TokenGrant

EARLY_SECONDS = 30.0  # a token is renewed this long before it expires
UNSTATED_LIFETIME = 300.0  # seconds, for a token endpoint that does not say (`expires_in` is optional)
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # RFC 6749 5.2's codes; anything else is not quoted


class TokenError(Exception):
    """No token could be had: the attempt's error (its message names no secret)."""


@dataclass(frozen=True)
class Token:
    value: str
    lifetime: float  # seconds, from when it was received


FetchToken = Callable[[TokenGrant], Awaitable[Token]]


class Tokens:
    def __init__(self, fetch: FetchToken, clock: Callable[[], float] = time.monotonic) -> None:
        self.fetch = fetch
        self.clock = clock
        self._kept: dict[TokenGrant, tuple[str, float]] = {}  # grant -> (token, renew at)
        self._fetching: dict[TokenGrant, asyncio.Future[str]] = {}

    async def get(self, grant: TokenGrant) -> str:
        kept = self._kept.get(grant)
        if kept is not None and self.clock() < kept[1]:
            return kept[0]
        pending = self._fetching.get(grant)
        if pending is None:
            pending = self._fetching[grant] = asyncio.ensure_future(self._fetch(grant))
        return await asyncio.shield(pending)  # one waiter cancelled does not cancel the others' fetch

    async def _fetch(self, grant: TokenGrant) -> str:
        try:
            token = await self.fetch(grant)
            self._kept[grant] = (token.value, self.clock() + token.lifetime - EARLY_SECONDS)
            return token.value
        finally:
            del self._fetching[grant]

    def forget(self, grant: TokenGrant, value: str) -> None:
        """The target refused this token: the next `get` fetches another (unless one already has)."""
        kept = self._kept.get(grant)
        if kept is not None and kept[0] == value:
            del self._kept[grant]


def read_token_response(status: int, body: bytes) -> Token:
    """The token in a token endpoint's answer; raises TokenError naming the status and the RFC 6749
    error code (`token endpoint answered 401: invalid_client`)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        data = {}
    if status != 200:
        code = data.get("error")
        detail = f": {code}" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""
        raise TokenError(f"token endpoint answered {status}{detail}")
    value, lifetime = data.get("access_token"), data.get("expires_in", UNSTATED_LIFETIME)
    if not isinstance(value, str) or not value or any(ord(ch) < 33 or ord(ch) > 126 for ch in value):
        raise TokenError("token endpoint answered 200 without a usable access_token")
    try:
        seconds = float(lifetime)
    except (TypeError, ValueError):
        raise TokenError("token endpoint answered 200 with an expires_in that is not a number") from None
    return Token(value, seconds)
