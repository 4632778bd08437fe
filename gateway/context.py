"""The typed request context: the application and the caller, authenticated once per HTTP request and
again for every operation on a websocket (a socket outlives the key it was opened with)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from strawberry.types import Info as StrawberryInfo

from domain.application import Hookline
from domain.events import Publication
from domain.requests import Send
from domain.roles import Principal
from gateway.auth import Authenticator
from gateway.live import LiveUpdates

# Records one event for a caller (`publishEvent`): its id and whether it repeats an earlier one.
Publish = Callable[[Principal, Publication], Awaitable[tuple[UUID, bool]]]


@dataclass
class Context:
    app: Hookline
    authenticator: Authenticator
    send: Send
    publish: Publish
    live: LiveUpdates
    authorization: str | None
    connection_params: dict[str, Any] | None = None  # graphql-transport-ws `connection_init` payload
    _principal: Principal | None = field(default=None, init=False)

    async def principal(self) -> Principal:
        if self.connection_params is not None:  # a socket: the Authenticator's short cache decides
            given = self.connection_params.get("Authorization")
            return await self.authenticator.principal(given if isinstance(given, str) else None)
        if self._principal is None:
            self._principal = await self.authenticator.principal(self.authorization)
        return self._principal


Info = StrawberryInfo[Context, Any]
