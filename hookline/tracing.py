"""OpenTelemetry traces, set up only when an OTLP endpoint is configured.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, a process exports
its spans (publish, fan-out, attempt) over OTLP/HTTP; the SDK reads the other standard `OTEL_*`
variables itself (headers, timeout, sampler, batch processor, resource attributes). Unset, there is
no tracer at all: the gateway and the jobs check `tracer is None` and make no span.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.trace import Tracer

from hookline import __version__

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SERVICE_NAME = "hookline"


def tracer_from_env(environ: Mapping[str, str] = os.environ) -> Tracer | None:
    """A tracer exporting over OTLP/HTTP when an endpoint is set, else None (nothing is set up).
    The provider flushes what it holds when the process exits."""
    if not any(environ.get(name) for name in ENDPOINTS):
        return None
    # Imported here: the SDK and the exporter (protobuf, requests) are loaded only when traces are on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider.get_tracer("hookline", __version__)
