"""Prometheus metrics of a process, counted from what the store records (so every mode counts alike)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from store.readmodel import FollowerWork, Observed

if TYPE_CHECKING:  # (the runtime's loops are counted here, and runtime reports to these metrics)
    from hookline.runtime import Liveness

ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_published = Counter(
            "hookline_events_published", "Events recorded in the store", registry=self.registry
        )
        self.deliveries_finished = Counter(
            "hookline_deliveries_finished",
            "Deliveries that reached a final status",
            ["status"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "hookline_attempts", "Delivery attempts recorded", ["outcome"], registry=self.registry
        )
        self.attempt_duration = Histogram(
            "hookline_attempt_duration_seconds",
            "Duration of delivery attempts",
            buckets=ATTEMPT_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "hookline_queue_depth", "Jobs waiting in this process's queue", registry=self.registry
        )
        self.projection_lag = Gauge(
            "hookline_projection_lag",
            "Stored events not yet applied to the read models",
            registry=self.registry,
        )
        self.audit_verifications = Counter(
            "hookline_audit_verifications",
            "Audit-chain verifications run (callers that shared a running one not counted again)",
            registry=self.registry,
        )
        self.audit_records_read = Counter(
            "hookline_audit_records_read",
            "Stored events read and decrypted by audit-chain verifications",
            registry=self.registry,
        )

        self.backlog_oldest = Gauge(
            "hookline_delivery_backlog_oldest_seconds",
            "Age of the oldest delivery that is due and unsent (an event not yet fanned out counts); 0: none",
            registry=self.registry,
        )
        self.webhooks_failing = Gauge(
            "hookline_webhooks_failing",
            "Active webhooks whose attempts have all failed since their last success",
            registry=self.registry,
        )
        self.http_responses = Counter(
            "hookline_http_responses",
            "Responses of the gateway, by status class (5xx: also requests that raised)",
            ["code"],
            registry=self.registry,
        )

    def watch_backlog(
        self, oldest_due: Callable[[datetime], datetime | None], now: Callable[[], datetime]
    ) -> None:
        def age() -> float:
            at = now()
            due = oldest_due(at)
            return 0.0 if due is None else max((at - due).total_seconds(), 0.0)

        self.backlog_oldest.set_function(age)

    def watch_failing(self, failing_webhooks: Callable[[], int]) -> None:
        self.webhooks_failing.set_function(failing_webhooks)

    def watch_loops(self, liveness: Liveness) -> None:
        self.registry.register(LoopsCollector(liveness))

    def responded(self, status: int) -> None:
        """Told by the gateway of each response's status."""
        self.http_responses.labels(f"{status // 100}xx").inc()

    def watch_lag(self, projection_lag: Callable[[], int]) -> None:
        self.projection_lag.set_function(projection_lag)

    def watch_follower(self, work: FollowerWork) -> None:
        self.registry.register(FollowerCollector(work))

    def verified(self, records_read: int) -> None:
        """Told by the audit trail after each verification it ran."""
        self.audit_verifications.inc()
        self.audit_records_read.inc(records_read)

    def count(self, observed: Sequence[Observed]) -> None:
        """A follower listener: counts what each batch of stored events recorded."""
        for _, domain_event in observed:
            name = type(domain_event).__qualname__
            if name == "Event.Published":
                self.events_published.inc()
            elif name in ("Delivery.Attempted", "Delivery.AttemptSucceeded", "Delivery.AttemptFailed"):
                attempt = getattr(domain_event, "attempt")  # noqa: B009
                succeeded = attempt["status_code"] is not None and 200 <= attempt["status_code"] < 300
                self.attempts.labels("success" if succeeded else "failure").inc()
                self.attempt_duration.observe(attempt["duration_ms"] / 1000)
                if succeeded:
                    self.deliveries_finished.labels("SUCCEEDED").inc()
                elif getattr(domain_event, "next_attempt_at", None) is None:
                    self.deliveries_finished.labels("FAILED").inc()
            elif name == "Delivery.Abandoned":
                self.deliveries_finished.labels("FAILED").inc()


class FollowerCollector(Collector):
    """What following the store's log has cost this process: every stored event of the cluster passes
    through each follower, so its time per delivery caps the cluster (bench.serial)."""

    def __init__(self, work: FollowerWork) -> None:
        self.work = work

    def collect(self) -> Iterator[CounterMetricFamily]:
        work = self.work
        yield CounterMetricFamily(
            "hookline_follower_busy_seconds",
            "Wall time spent applying the store's log to the read models",
            value=work.busy_seconds,
        )
        yield CounterMetricFamily(
            "hookline_follower_cpu_seconds",
            "CPU time of the thread applying the store's log to the read models",
            value=work.cpu_seconds,
        )
        yield CounterMetricFamily(
            "hookline_follower_applied", "Stored events applied to the read models", value=work.applied
        )


class LoopsCollector(Collector):
    """The liveness of the process's loops that must never die, as they are at each scrape."""

    def __init__(self, liveness: Liveness) -> None:
        self.liveness = liveness

    def collect(self) -> Iterator[GaugeMetricFamily]:
        since = GaugeMetricFamily(
            "hookline_loop_seconds_since_tick", "Seconds since the loop last went round", labels=["loop"]
        )
        stalled = GaugeMetricFamily(
            "hookline_loop_stalled",
            "1 when the loop has not gone round for 3 times its interval (readiness fails)",
            labels=["loop"],
        )
        for loop in list(self.liveness.intervals):
            since.add_metric([loop], self.liveness.since_tick(loop))
            stalled.add_metric([loop], float(self.liveness.is_stalled(loop)))
        yield since
        yield stalled
