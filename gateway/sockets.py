"""graphql-transport-ws whose key is checked for as long as the socket is open, not only at
`connection_init`: before every operation, and every half second while it sits idle. A key that no
longer works (revoked, or its organisation's) closes the socket with 4403, as a refused
`connection_init` does, and what was sent over it after that runs no further."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from domain.errors import HooklineError
from gateway.context import Context

log = structlog.get_logger("hookline.gateway")

CHECK_SECONDS = 0.5
FORBIDDEN = 4403


class KeyCheckingHandler(BaseGraphQLTransportWSHandler[Context, None]):
    _watch: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._watch is None:
            self._watch = asyncio.create_task(self._watch_key())

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and not await self._key_still_works():
            return
        await super().handle_subscribe(message)

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await super().shutdown()

    async def _watch_key(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            if not await self._key_still_works():
                return

    async def _key_still_works(self) -> bool:
        try:
            await self.context.principal()
        except HooklineError:
            await self._close_forbidden()
            return False
        except Exception:  # the store did not answer: the next check (or operation) tries again
            log.warning("could not check a websocket's key", exc_info=True)
        return True

    async def _close_forbidden(self) -> None:
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with contextlib.suppress(Exception):  # already closed by the other side
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
