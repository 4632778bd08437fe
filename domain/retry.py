"""When to try a delivery again: the retry schedule as data, and the pure rule that applies it.

The default schedule follows what the best senders do (Svix, Stripe): a first retry within seconds, then
backing off to hours, for a little over a day in all. Each delay is shortened by up to a fifth at random
(jitter), so that retries of many deliveries that failed together do not arrive together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

DEFAULT_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
JITTER = 0.2
MIN_RETRY_AFTER = timedelta(seconds=1)
MAX_RETRY_AFTER = timedelta(hours=6)
RETRY_AFTER_STATUSES = (429, 503)
GONE = 410


@dataclass(frozen=True)
class RetryPolicy:
    schedule: Sequence[timedelta] = DEFAULT_SCHEDULE

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def next_attempt_at(
        self,
        attempts_made: int,
        status_code: int | None,
        retry_after: str | None,
        now: datetime,
        rand: float,
    ) -> datetime | None:
        """The time of the next attempt after a failed one, or None when there is none.

        `attempts_made` counts the failed attempt; `rand` is uniform in [0, 1).
        """
        if status_code == GONE or attempts_made >= self.max_attempts:
            return None
        if status_code in RETRY_AFTER_STATUSES and retry_after:
            asked = parse_retry_after(retry_after, now)
            if asked is not None:
                return now + min(max(asked, MIN_RETRY_AFTER), MAX_RETRY_AFTER)
        delay = self.schedule[attempts_made - 1]
        return now + delay * (1 - JITTER * rand)


def parse_retry_after(value: str, now: datetime) -> timedelta | None:
    """`Retry-After` as delay-seconds or an HTTP date; None when it is neither."""
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """A schedule written as comma-separated seconds, e.g. "5,300,1800" (used by tests and settings)."""
    delays = tuple(timedelta(seconds=float(part)) for part in text.split(",") if part.strip())
    if any(d.total_seconds() < 0 for d in delays):
        raise ValueError("retry delays must not be negative")
    return delays
