"""The ASGI application: GraphQL (HTTP and graphql-transport-ws) on /graphql, plain-HTTP publishing on
/events, health on /healthz, and the admin console (static files, no server-side rendering) on `/`.

A GraphQL request is authenticated before its document is parsed: a caller without a working key gets
UNAUTHENTICATED for the price of a dictionary lookup, and nothing of what it sent is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from opentelemetry.trace import Tracer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope
from starlette.types import Send as ASGISend
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from domain.application import Hookline
from domain.errors import HooklineError
from domain.events import DEFAULT_MAX_PAYLOAD
from domain.requests import Send
from gateway.auth import Authenticator
from gateway.context import Context, Publish
from gateway.events import EventsEndpoint
from gateway.headers import SecurityHeaders, graphiql_page
from gateway.limits import BodyLimit, is_json, refusal
from gateway.live import LiveUpdates
from gateway.prepared import PreparedPublishing, refused
from gateway.schema import DEFAULT_DOCUMENT_CACHE_BYTES, LIMIT_RULES, build_schema
from gateway.sockets import KeyCheckingHandler
from gateway.usage import KeyUsage

Background = Callable[[], AbstractAsyncContextManager[None]]
READY_TIMEOUT = 2.0
DEFAULT_MAX_REQUEST = 16 * 1024 * 1024
PLAIN_PATHS = ("/events",)  # answered in the plain-HTTP error shape, not GraphQL's
CONSOLE = Path(__file__).parent / "console"


class HooklineGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = KeyCheckingHandler

    def __init__(
        self,
        app: Hookline,
        authenticator: Authenticator,
        send: Send,
        publish: Publish,
        live: LiveUpdates,
        key_usage: KeyUsage,
        document_cache_bytes: int = DEFAULT_DOCUMENT_CACHE_BYTES,
        tracer: Tracer | None = None,
    ) -> None:
        schema = build_schema(document_cache_bytes)
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.app = app
        self.authenticator = authenticator
        self.send = send
        self.publish = publish
        self.live = live
        self.key_usage = key_usage
        self.tracer = tracer
        self.graphiql, self.graphiql_policy = graphiql_page()
        self.prepared = PreparedPublishing(schema._schema, LIMIT_RULES, self.encode_json)

    async def __call__(self, scope: Scope, receive: Receive, send: ASGISend) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            prepared = None
            if scope["method"] == "POST":  # a publishEvent a source system sends: the short way
                prepared = await self.prepared.answer(request, lambda: self.get_context(request))
            if prepared is None:
                response = await self.run(request)
            else:
                response = Response(self.encode_json(prepared), media_type="application/json")
        except HTTPException as error:  # strawberry's own refusals, in the shape of every other answer
            response = refusal(error.status_code, error.reason, field="request")
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        """orjson refuses (JSONDecodeError) what would exhaust the standard parser's recursion."""
        return orjson.loads(data)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method != "GET" and not is_json(request.content_type):
            given = request.content_type or "none"
            message = f"the request body must be JSON (Content-Type: application/json), not {given}"
            raise HTTPException(415, message)
        return await super().parse_http_body(request)

    async def execute_operation(  # strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        try:
            await context.principal()
        except Exception as error:  # mapped, as a resolver's would be: UNAUTHENTICATED, or logged
            return ExecutionResult(data=None, errors=[refused(error)])
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.graphiql, headers={"Content-Security-Policy": self.graphiql_policy})

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        return Context(
            app=self.app,
            authenticator=self.authenticator,
            send=self.send,
            publisher=self.publish,
            live=self.live,
            key_usage=self.key_usage,
            authorization=request.headers.get("authorization") if isinstance(request, Request) else None,
            tracer=self.tracer,
            traceparent=request.headers.get("traceparent") if self.tracer is not None else None,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """The key comes in the `connection_init` payload; a missing or bad one closes with 4403."""
        try:
            await context.principal()
        except HooklineError as error:
            raise ConnectionRejectionError({"message": str(error)}) from error
        unset: UnsetType = UNSET
        return unset


async def healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


ReadyCheck = Callable[[], Awaitable[bool]]
MetricsText = Callable[[], bytes]
Responded = Callable[[int], None]


class StatusCounting:
    """Tells `responded` the status of every HTTP answer; a request that raised before answering
    counts as the 500 that Starlette then sends."""

    def __init__(self, app: ASGIApp, responded: Responded) -> None:
        self.app = app
        self.responded = responded

    async def __call__(self, scope: Scope, receive: Receive, send: ASGISend) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def counted(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self.responded(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            if not started:
                self.responded(500)
            raise


def create_app(
    app: Hookline,
    send: Send,
    publish: Publish,
    live: LiveUpdates,
    key_usage: KeyUsage,
    background: Background | None = None,
    ready_checks: Sequence[ReadyCheck] = (),
    stalled: Callable[[], list[str]] = list,
    metrics: MetricsText | None = None,
    responded: Responded | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST,
    document_cache_bytes: int = DEFAULT_DOCUMENT_CACHE_BYTES,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
    tracer: Tracer | None = None,
) -> Starlette:
    """The gateway over an application.

    `send` sends `sendTest` requests; `publish` records the events of `publishEvent` and `POST /events`
    (`max_payload_bytes` tells the latter's 413 from other bad input); `live` streams delivery updates
    (fed by the log follower); `key_usage` notes when each key was last used, and writes it out while
    the server runs; `background` runs for the life of the server (follower, queue); `ready_checks`
    answer whether the store (and Redis) respond, and `stalled` names the background loops that stopped
    going round; `metrics` renders Prometheus text (some of it read from the store, so in a thread) and
    `responded` counts answers by status; `document_cache_bytes` bounds the parsed documents kept for
    reuse; `tracer` (None: traces off) makes each publish a span, continuing the request's `traceparent`.
    """

    async def readyz(_: Request) -> Response:
        problems = []
        for check in ready_checks:
            try:
                ok = await asyncio.wait_for(check(), READY_TIMEOUT)
            except Exception:  # a check that fails or hangs means not ready, whatever the cause
                ok = False
            if not ok:
                problems.append(f"{check.__name__.removesuffix('_ready')} does not answer")
        problems += stalled()
        if problems:
            return PlainTextResponse("not ready: " + "; ".join(problems), status_code=503)
        return PlainTextResponse("ready")

    async def metrics_text(_: Request) -> Response:
        body = await asyncio.to_thread(metrics) if metrics else b""
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    authenticator = Authenticator(app.authenticate, used=key_usage.used)
    graphql = HooklineGraphQL(
        app,
        authenticator,
        send,
        publish,
        live,
        key_usage,
        document_cache_bytes=document_cache_bytes,
        tracer=tracer,
    )
    events = EventsEndpoint(authenticator, publish, max_payload_bytes, tracer)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with key_usage.flushing():
            if background is None:
                yield
                return
            async with background():
                yield

    routes: list[Any] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/events", events.events, methods=["POST"]),
        Route("/events/{type:anytext}", events.typed, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        # Last, so that every route above keeps its path: the console is everything else.
        Mount("/", StaticFiles(directory=CONSOLE, html=True), name="console"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            *([Middleware(StatusCounting, responded=responded)] if responded else []),
            Middleware(SecurityHeaders),
            Middleware(BodyLimit, max_bytes=max_request_bytes, plain_paths=PLAIN_PATHS),
        ],
    )
