"""The parameters of one end-to-end run (`python -m bench.e2e`'s options)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Options:
    mode: str = "embedded"  # or "distributed"
    workers: int = 1  # distributed only
    events: int = 3000  # ignored at a fixed rate: rate x duration
    webhooks: int = 1  # 0: publishing only, nothing delivered
    batch: int = 100
    concurrency: int = 8  # publish requests in flight
    rate: float = 0.0  # events/s; 0 = saturated
    duration: float = 30.0  # seconds, at a fixed rate
    timeout: float = 300.0  # seconds to wait for arrivals after the last publish returned
    delivery_concurrency: int = 64  # HOOKLINE_DELIVERY_CONCURRENCY, and the raw client's requests in flight
    keep: bool = False  # keep the server's directory (logs, SQLite store)
    redis_url: str | None = None  # distributed: None = a private redis-server for the run
    per_request: bool = False  # saturated, one event per publishEvent request instead of batches
    in_flight: int = 32  # --per-request: requests in flight
    via: str = "graphql"  # one event a request: publishEvent, or "http": POST /events/{type}

    @property
    def total_events(self) -> int:
        return round(self.rate * self.duration) if self.rate > 0 else self.events

    @property
    def expected(self) -> int:
        return self.total_events * self.webhooks

    @property
    def publishing(self) -> str:
        """How the run publishes: "batches", "per-request" (saturated) or "fixed-rate"."""
        if self.rate > 0:
            return "fixed-rate"
        return "per-request" if self.per_request else "batches"

    @property
    def in_flight_requests(self) -> int:
        """Publish requests in flight at most."""
        return self.in_flight if self.publishing == "per-request" else self.concurrency
