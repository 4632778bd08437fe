"""Traces: with an OTLP endpoint set, a publish, its fan-out and each attempt are spans of the trace the
publish request's `traceparent` names, and the target receives a `traceparent` of that trace. A real
`hookline serve` (and in distributed mode a real worker) exports to a real OTLP/HTTP receiver on
loopback, whose requests are decoded with opentelemetry-proto."""

from __future__ import annotations

import gzip
import secrets
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.queries import CREATE_WEBHOOK, PUBLISH, webhook_input
from tests.support import Received, Receiver, Server, running_server, wait_until

PUBLISH_MANY = """
mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId duplicate } }
"""


@pytest.fixture
def collector() -> Any:
    """A real OTLP/HTTP receiver on loopback: it records each export and answers as a collector does."""
    with Receiver() as receiver:
        receiver.respond = lambda _: (200, {"Content-Type": "application/x-protobuf"}, "")
        yield receiver


def exported_spans(collector: Receiver) -> list[Span]:
    spans: list[Span] = []
    for request in list(collector.requests):
        assert request.path == "/v1/traces", request.path
        body = request.body
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        spans += [s for r in export.resource_spans for ss in r.scope_spans for s in ss.spans]
    return spans


def attributes(span: Span) -> dict[str, object]:
    found: dict[str, object] = {}
    for pair in span.attributes:
        value = pair.value
        found[pair.key] = value.int_value if value.HasField("int_value") else value.string_value
    return found


def traceparent() -> tuple[str, str, str]:
    """A caller's W3C traceparent: the header, its trace id and its span id (hex)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def webhook_to(server: Server, target: Receiver) -> str:
    admin = server.key("acme", "admin")
    created = server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(target.url + "/hooks")}).ok()
    return str(created["createWebhook"]["id"])


def spans_of_trace(collector: Receiver, trace_id: str, wanted: dict[str, int]) -> dict[str, list[Span]]:
    """The trace's spans by name, once as many of each name as `wanted` have been exported."""

    def exported() -> dict[str, list[Span]] | None:
        found: dict[str, list[Span]] = {}
        for span in exported_spans(collector):
            if span.trace_id.hex() == trace_id:
                found.setdefault(span.name, []).append(span)
        return found if all(len(found.get(n, [])) >= c for n, c in wanted.items()) else None

    result: dict[str, list[Span]] = wait_until(exported, timeout=30)
    return result


def carried(request: Received) -> tuple[str, str]:
    """The trace id and span id of the `traceparent` a target received."""
    version, trace_id, span_id, flags = request.headers["traceparent"].split("-")
    assert (version, flags) == ("00", "01")
    return trace_id, span_id


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_each_attempt_continues_the_trace_of_the_publish_request_and_carries_it_to_the_target(
    mode: str, tmp_path: Path, collector: Receiver, receiver: Receiver
) -> None:
    header, trace_id, caller_span = traceparent()
    with running_server(
        tmp_path,
        mode,
        workers=1,
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
    ) as server:
        webhook_id = webhook_to(server, receiver)
        receiver.respond = lambda _: (202, {}, "accepted")
        publisher = server.key("acme", "publisher")
        event = {"type": "alert.activated", "payload": {"alert_name": "Disk full"}}
        server.gql(publisher, PUBLISH, {"input": event}, headers={"traceparent": header}).ok()

        (request,) = receiver.wait_for(1)
        wanted = {"hookline.publish": 1, "hookline.fan_out": 1, "hookline.attempt": 1}
        spans = spans_of_trace(collector, trace_id, wanted)

    (publish,) = spans["hookline.publish"]
    (fan_out,) = spans["hookline.fan_out"]
    (attempt,) = spans["hookline.attempt"]
    assert publish.parent_span_id.hex() == caller_span
    assert fan_out.parent_span_id == publish.span_id
    assert attempt.parent_span_id == publish.span_id
    assert attempt.kind == Span.SPAN_KIND_CLIENT
    assert carried(request) == (trace_id, attempt.span_id.hex())
    delivery_id = request.headers["webhook-id"]
    assert attributes(attempt) == {
        "http.request.method": "POST",
        "http.response.status_code": 202,
        "hookline.delivery_id": delivery_id,
        "hookline.webhook_id": webhook_id,
        "hookline.attempt": 1,
    }


def test_every_attempt_of_each_event_of_publish_events_a_retry_too_is_in_the_requests_trace(
    tmp_path: Path, collector: Receiver, receiver: Receiver
) -> None:
    header, trace_id, _ = traceparent()
    with running_server(
        tmp_path,
        "embedded",
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        HOOKLINE_RETRY_SCHEDULE="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
    ) as server:
        webhook_to(server, receiver)
        # Each event's first attempt is answered 503, its retry (a second later) 200.
        receiver.respond = lambda _: (503, {}, "down") if len(receiver.requests) <= 2 else (200, {}, "ok")
        publisher = server.key("acme", "publisher")
        events = [{"type": "alert.activated", "payload": {"n": n}} for n in range(2)]
        server.gql(publisher, PUBLISH_MANY, {"input": events}, headers={"traceparent": header}).ok()

        requests = receiver.wait_for(4)
        spans = spans_of_trace(collector, trace_id, {"hookline.publish": 1, "hookline.attempt": 4})

    assert len(requests) == 4
    assert {carried(r)[0] for r in requests} == {trace_id}
    assert {carried(r)[1] for r in requests} == {a.span_id.hex() for a in spans["hookline.attempt"]}
    (publish,) = spans["hookline.publish"]
    outcomes = sorted(
        (
            str(attributes(a)["hookline.delivery_id"]),
            attributes(a)["hookline.attempt"],
            attributes(a)["http.response.status_code"],
            a.status.code,
            a.status.message,
        )
        for a in spans["hookline.attempt"]
        if a.parent_span_id == publish.span_id
    )
    deliveries = sorted({r.headers["webhook-id"] for r in requests})
    error, unset = Status.STATUS_CODE_ERROR, Status.STATUS_CODE_UNSET
    assert outcomes == [
        (delivery, number, *outcome)
        for delivery in deliveries
        for number, outcome in [(1, (503, error, "HTTP 503")), (2, (200, unset, ""))]
    ]


def test_without_an_endpoint_no_trace_is_made_and_targets_get_no_traceparent(
    embedded_server: Server, receiver: Receiver
) -> None:
    webhook_to(embedded_server, receiver)
    publisher = embedded_server.key("acme", "publisher")
    header, _, _ = traceparent()
    event = {"type": "alert.activated", "payload": {"alert_name": "Disk full"}}
    embedded_server.gql(publisher, PUBLISH, {"input": event}, headers={"traceparent": header}).ok()

    (request,) = receiver.wait_for(1)
    assert "traceparent" not in {name.lower() for name in request.headers}


def test_an_event_posted_to_its_type_without_graphql_is_traced_the_same_way(
    tmp_path: Path, collector: Receiver, receiver: Receiver
) -> None:
    from tests.test_http_publishing import post

    header, trace_id, caller_span = traceparent()
    with running_server(
        tmp_path,
        "embedded",
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
    ) as server:
        webhook_to(server, receiver)
        publisher = server.key("acme", "publisher")
        answer = post(
            server,
            "/events/alert.activated",
            {"alert_name": "Disk full"},
            key=publisher,
            headers={"traceparent": header},
        )
        assert answer.status == 202, answer.body

        (request,) = receiver.wait_for(1)
        spans = spans_of_trace(collector, trace_id, {"hookline.publish": 1, "hookline.attempt": 1})

    (publish,) = spans["hookline.publish"]
    (attempt,) = spans["hookline.attempt"]
    assert publish.parent_span_id.hex() == caller_span
    assert attempt.parent_span_id == publish.span_id
    assert carried(request) == (trace_id, attempt.span_id.hex())
