"""The publish's span: it continues the caller's W3C `traceparent`, and its own `traceparent` is kept
with each event it records, for the fan-out and attempts to continue (see `workers.tracing`). Used
only when a tracer is set up (see `hookline.tracing`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from domain.events import Publication

W3C = TraceContextTextMapPropagator()


@contextmanager
def publishing(
    tracer: Tracer, traceparent: str | None, publications: Sequence[Publication]
) -> Iterator[list[Publication]]:
    """The publications, each marked with the span of the publish that records them."""
    caller = W3C.extract({"traceparent": traceparent}) if traceparent else None
    with tracer.start_as_current_span(
        "hookline.publish",
        context=caller,
        kind=SpanKind.SERVER,
        attributes={"hookline.event_types": sorted({p.type for p in publications})},
    ):
        carrier: dict[str, str] = {}
        W3C.inject(carrier)
        yield [replace(p, trace_parent=carrier.get("traceparent")) for p in publications]
