"""The jobs' spans: a fan-out, and each attempt, in the trace its event was published in.

The publish's W3C `traceparent` is kept with the event (and carried by its fan-out job), so a job in
any process continues that trace; each attempt's request carries its own span's `traceparent` to the
target. Called only when a tracer is set up (see `hookline.tracing`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from uuid import UUID

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from domain.application import PreparedDelivery
from domain.deliveries import Attempt
from domain.requests import Send

W3C = TraceContextTextMapPropagator()
TRACEPARENT = "traceparent"


def parent(trace_parent: str | None) -> Context | None:
    """The context a `traceparent` names (None: the span starts a trace of its own)."""
    return W3C.extract({TRACEPARENT: trace_parent}) if trace_parent else None


async def traced_fan_out(
    tracer: Tracer, event_id: UUID, trace_parent: str | None, fan_out: Callable[[], Awaitable[list[UUID]]]
) -> list[UUID]:
    with tracer.start_as_current_span(
        "hookline.fan_out", context=parent(trace_parent), attributes={"hookline.event_id": str(event_id)}
    ) as span:
        made = await fan_out()
        span.set_attribute("hookline.deliveries", len(made))
        return made


async def traced_send(tracer: Tracer, send: Send, prepared: PreparedDelivery) -> Attempt:
    """Sends the prepared request inside the attempt's span, with the span's `traceparent` header."""
    request = prepared.request
    attributes: dict[str, str | int] = {
        "http.request.method": request.method,
        "hookline.delivery_id": str(prepared.delivery.id),
        "hookline.webhook_id": str(prepared.webhook_id),
        "hookline.attempt": prepared.delivery.next_attempt_number,
    }
    with tracer.start_as_current_span(
        "hookline.attempt", context=parent(prepared.trace_parent), kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        # Ours replaces a `traceparent` among the webhook's own headers, whatever its case.
        headers = {name: value for name, value in request.headers.items() if name.lower() != TRACEPARENT}
        W3C.inject(headers)
        attempt = await send(replace(request, headers=headers), prepared.delivery.next_attempt_number)
        if attempt.status_code is not None:
            span.set_attribute("http.response.status_code", attempt.status_code)
        if not attempt.succeeded:
            span.set_status(Status(StatusCode.ERROR, attempt.error))
        return attempt
