"""The typed request context: the application and the caller, authenticated once per HTTP request and
again for every operation on a websocket (a socket outlives the key it was opened with)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from strawberry.types import Info as StrawberryInfo

from domain.application import Hookline
from domain.events import Publication
from domain.requests import Send
from domain.roles import Principal
from gateway.auth import Authenticator
from gateway.live import LiveUpdates
from gateway.usage import KeyUsage

# Records one event for a caller (`publishEvent`): its id and whether it repeats an earlier one.
Publish = Callable[[Principal, Publication], Awaitable[tuple[UUID, bool]]]

P = ParamSpec("P")
R = TypeVar("R")
# A method of the application that acts for a caller: `Hookline.webhooks`, `Hookline.redeliver`, …
Command = Callable[Concatenate[Hookline, Principal, P], R]


@dataclass
class Context:
    app: Hookline
    authenticator: Authenticator
    send: Send
    publisher: Publish
    live: LiveUpdates
    key_usage: KeyUsage
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

    async def run(self, command: Command[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """The command's answer for the caller; the store is synchronous, so it runs in the thread pool."""
        principal = await self.principal()
        return await asyncio.to_thread(command, self.app, principal, *args, **kwargs)

    async def run_with_caller(
        self, command: Command[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> tuple[Principal, R]:
        """The caller too, for answers whose fields depend on who asks (a webhook's secrets)."""
        principal = await self.principal()
        return principal, await asyncio.to_thread(command, self.app, principal, *args, **kwargs)

    async def publish(self, publication: Publication) -> tuple[UUID, bool]:
        return await self.publisher(await self.principal(), publication)


Info = StrawberryInfo[Context, Any]
