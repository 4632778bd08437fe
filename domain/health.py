"""A webhook's health: its attempts of the last 24 hours counted hour by hour (attempts, failures, a
histogram of their durations, their status codes), and its streak of failed attempts. Pure: the read
model keeps one `HealthRecord` per webhook, moved on by each attempt, and a query sums its hours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.deliveries import Attempt

WINDOW = timedelta(hours=24)
KEPT = WINDOW + timedelta(hours=1)  # an hour is kept while any of it is inside the window
# Upper bounds (ms) of the duration histogram's buckets; one more bucket holds what is longer.
LATENCY_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000)
NO_RESPONSE = ""  # the status-code key of an attempt that got no answer (timeout, refused)


def hour_of(at: datetime) -> str:
    """The key of an attempt's hour: its UTC time to the hour, as text that sorts as time does."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H")


def window_start(now: datetime) -> str:
    """The key of the oldest hour of the window that ends `now`: a record's health over that window is
    the same for every `now` with the same start, so the read model can keep it computed."""
    return hour_of(now - WINDOW)


def latency_bucket(duration_ms: float) -> int:
    return next(
        (i for i, bound in enumerate(LATENCY_BOUNDS_MS) if duration_ms <= bound), len(LATENCY_BOUNDS_MS)
    )


def quantile(counts: list[int], q: float) -> float | None:
    """The q-quantile (0-1) of durations counted in the histogram's buckets, interpolated linearly
    inside its bucket as Prometheus' histogram_quantile does; None when nothing was counted."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i == len(LATENCY_BOUNDS_MS):  # beyond the last bound: that bound is all that is known
                return float(LATENCY_BOUNDS_MS[-1])
            lower = 0.0 if i == 0 else float(LATENCY_BOUNDS_MS[i - 1])
            return lower + (LATENCY_BOUNDS_MS[i] - lower) * (rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])


@dataclass
class HealthRecord:
    """What the read model keeps of one webhook: its streak, and its hours (each `[attempts,
    failures, [durations by bucket], {status code: attempts}]`) of the last KEPT."""

    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    hours: dict[str, list[Any]] = field(default_factory=dict)

    def attempted(self, attempt: Attempt) -> None:
        at, succeeded = attempt.started_at, attempt.succeeded
        if succeeded:
            self.consecutive_failures = 0
            self.last_success_at = max(at, self.last_success_at) if self.last_success_at else at
        else:
            self.consecutive_failures += 1
            self.last_failure_at = max(at, self.last_failure_at) if self.last_failure_at else at
        hour = self.hours.setdefault(hour_of(at), [0, 0, [0] * (len(LATENCY_BOUNDS_MS) + 1), {}])
        hour[0] += 1
        hour[1] += 0 if succeeded else 1
        hour[2][latency_bucket(attempt.duration_ms)] += 1
        code = NO_RESPONSE if attempt.status_code is None else str(attempt.status_code)
        hour[3][code] = hour[3].get(code, 0) + 1
        oldest = hour_of(at - KEPT)
        for key in [key for key in self.hours if key < oldest]:
            del self.hours[key]

    def health(self, now: datetime) -> WebhookHealth:
        """The health over the hours of the window that ends `now` (its streak: whenever it began)."""
        since = window_start(now)
        hours = [hour for key, hour in self.hours.items() if key >= since]
        attempts = sum(hour[0] for hour in hours)
        failures = sum(hour[1] for hour in hours)
        latencies = [sum(bucket) for bucket in zip(*(hour[2] for hour in hours), strict=True)]
        codes: dict[str, int] = {}
        for hour in hours:
            for code, count in hour[3].items():
                codes[code] = codes.get(code, 0) + count
        return WebhookHealth(
            attempts=attempts,
            failures=failures,
            success_rate=(attempts - failures) / attempts if attempts else None,
            latency_p50_ms=quantile(latencies, 0.5) if hours else None,
            latency_p95_ms=quantile(latencies, 0.95) if hours else None,
            consecutive_failures=self.consecutive_failures,
            last_success_at=self.last_success_at,
            last_failure_at=self.last_failure_at,
            status_codes=sorted(
                ((None if code == NO_RESPONSE else int(code), count) for code, count in codes.items()),
                key=lambda pair: (pair[0] is None, pair[0] or 0),
            ),
        )


@dataclass(frozen=True)
class WebhookHealth:
    attempts: int
    failures: int  # attempts not answered 2xx
    success_rate: float | None  # None when there was no attempt
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    status_codes: list[tuple[int | None, int]]  # (status code, or None: no response; attempts)


NEVER_ATTEMPTED = WebhookHealth(
    attempts=0,
    failures=0,
    success_rate=None,
    latency_p50_ms=None,
    latency_p95_ms=None,
    consecutive_failures=0,
    last_success_at=None,
    last_failure_at=None,
    status_codes=[],
)
