"""Prometheus metrics of a process, counted from what the store records (so every mode counts alike)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from store.readmodel import Observed

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

    def watch_lag(self, projection_lag: Callable[[], int]) -> None:
        self.projection_lag.set_function(projection_lag)

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
