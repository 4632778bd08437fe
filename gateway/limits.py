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

from gateway.errors import BAD_USER_INPUT, bad_input, error_body


def is_json(content_type: str | bytes | None) -> bool:
    """`application/json`, with or without parameters (`; charset=utf-8`), in any case."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def refusal(status: int, message: str, field: str = "body") -> Response:
    """A refused request in the shape of a GraphQL answer: BAD_USER_INPUT naming what was wrong."""
    body = {"data": None, "errors": [{"message": message, "extensions": bad_input(field, message)}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def plain_refusal(status: int, message: str, field: str = "body") -> Response:
    """A refused request of the plain-HTTP endpoints (`POST /events`): `{"error": {…}}`."""
    body = error_body(BAD_USER_INPUT, message, [{"field": field, "message": message}])
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class BodyLimit:
    """`plain_paths`: paths (and what is under them) whose refusals take the plain-HTTP shape."""

    def __init__(self, app: ASGIApp, max_bytes: int, plain_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.plain_paths = plain_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        plain = any(path == p or path.startswith(p + "/") for p in self.plain_paths)
        refusal_of = plain_refusal if plain else refusal
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await refusal_of(413, self._too_large)(scope, receive, send)
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
                await refusal_of(413, self._too_large)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        if size and is_json(dict(scope["headers"]).get(b"content-type")):
            try:
                orjson.loads(b"".join(chunks))
            except orjson.JSONDecodeError as error:
                unreadable = f"the request body is not JSON a server can read: {error}"
                await refusal_of(400, unreadable)(scope, receive, send)
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
