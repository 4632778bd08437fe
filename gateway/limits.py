"""Bodies checked before anything parses them: a size cap, and JSON that a parser can take.

GraphQL answers only once it has the whole body, so reading it here first costs nothing more. A JSON
body nested deeper than orjson's limit (1 024) would exhaust the recursion of the standard library's
parser further on; it is refused here as bad input instead.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, 413, self._too_large)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, 413, self._too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if content_type.split(b";")[0].strip().lower() == b"application/json":
            try:
                orjson.loads(b"".join(chunks))
            except orjson.JSONDecodeError as error:
                await self._refuse(send, 400, f"the request body is not JSON a server can read: {error}")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @property
    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        body: dict[str, Any] = {
            "data": None,
            "errors": [
                {
                    "message": message,
                    "extensions": {
                        "code": "BAD_USER_INPUT",
                        "fields": [{"field": "body", "message": message}],
                    },
                }
            ],
        }
        raw = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})
