"""The typed request context: the application and the caller, authenticated once per HTTP request and
again for every operation on a websocket (a socket outlives the key it was opened with)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from opentelemetry.trace import Tracer
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from domain.application import Hookline
from domain.events import Publication
from domain.health import WebhookHealth
from domain.requests import Send
from domain.roles import Principal
from domain.service.publishing import Published, Publishing
from gateway.auth import Authenticator
from gateway.live import LiveUpdates
from gateway.tracing import publishing
from gateway.usage import KeyUsage

# Records one caller's events (`publishEvent`, `POST /events`), batched with other callers' into one
# transaction: each event's id and whether it repeats an earlier one; or raises the request's error.
Publish = Callable[[Publishing], Awaitable[Published]]

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
    tracer: Tracer | None = None  # None: traces are off, and no span is made
    traceparent: str | None = None  # the request's W3C `traceparent` header, which a publish continues
    _principal: Principal | None = field(default=None, init=False)
    _health: DataLoader[UUID, WebhookHealth] | None = field(default=None, init=False)

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

    async def webhook_health(self, webhook_id: UUID) -> WebhookHealth:
        """A webhook's health, read with that of every other webhook the request shows in one query."""
        if self._health is None:

            async def load(webhook_ids: list[UUID]) -> list[WebhookHealth]:
                found = await self.run(Hookline.webhook_health, webhook_ids)
                return [found[webhook_id] for webhook_id in webhook_ids]

            self._health = DataLoader(load_fn=load)
        return await self._health.load(webhook_id)

    async def publish(self, publication: Publication) -> tuple[UUID, bool]:
        if self.tracer is None:
            (published,) = await self.publisher(
                Publishing(await self.principal(), [publication], numbered=False)
            )
            return published
        with publishing(self.tracer, self.traceparent, [publication]) as traced:
            (published,) = await self.publisher(Publishing(await self.principal(), traced, numbered=False))
            return published

    async def publish_events(self, publications: list[Publication]) -> list[tuple[UUID, bool]]:
        if self.tracer is None:
            return await self.run(Hookline.publish_events, publications)
        with publishing(self.tracer, self.traceparent, publications) as traced:
            return await self.run(Hookline.publish_events, traced)


Info = StrawberryInfo[Context, Any]
