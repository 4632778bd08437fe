"""Bodies checked before anything parses them: a size cap, and JSON that a parser can take.

GraphQL answers only once it has the whole body, so reading it here first costs nothing more. A JSON
body nested deeper than orjson's limit (1 024) would exhaust the recursion of the standard library's
parser further on; it is refused here as bad input instead. `is_json` is the one rule of what a JSON
body is: the GraphQL view refuses (415) every other body, so nothing parses a body this did not check.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import bad_input


def is_json(content_type: str | bytes | None) -> bool:
    """`application/json`, with or without parameters (`; charset=utf-8`), in any case."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def refusal(status: int, message: str, field: str = "body") -> Response:
    """A refused request in the shape of a GraphQL answer: BAD_USER_INPUT naming what was wrong."""
    body = {"data": None, "errors": [{"message": message, "extensions": bad_input(field, message)}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


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
            await refusal(413, self._too_large)(scope, receive, send)
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
                await refusal(413, self._too_large)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        if size and is_json(dict(scope["headers"]).get(b"content-type")):
            try:
                orjson.loads(b"".join(chunks))
            except orjson.JSONDecodeError as error:
                unreadable = f"the request body is not JSON a server can read: {error}"
                await refusal(400, unreadable)(scope, receive, send)
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
