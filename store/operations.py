"""What operators watch, read from the read model's tables at each scrape of /metrics: each answer is
a read at the start of an index (or a count over a short one), whatever the size of the store."""

from __future__ import annotations

from datetime import datetime

from domain.deliveries import DeliveryStatus
from store.sql import Database, at_moment


class OperationsQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def oldest_due(self, now: datetime) -> datetime | None:
        """Since when the longest-waiting work has been due and not done: the earliest due time of an
        unfinished delivery (a pending one without a time is due since it was made) or recording of
        an event not yet fanned out (its deliveries do not exist yet); None when nothing is due by
        `now`. Three reads at the start of an index each, however long the backlog."""
        first_due = (
            "(SELECT COALESCE(next_attempt_at, created_at) FROM hl_deliveries WHERE status = ?"
            " ORDER BY COALESCE(next_attempt_at, created_at) LIMIT 1)"
        )
        with self.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT {first_due}, {first_due},"
                " (SELECT recorded_at FROM hl_events WHERE fanned_out = 0 ORDER BY recorded_at LIMIT 1)",
                (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value),
            )
            row = c.fetchone()
        oldest = min((at_moment(text) for text in row if text), default=None)
        return oldest if oldest is not None and oldest <= now else None

    def failing_count(self) -> int:
        """How many active webhooks have failed every attempt since their last success."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT COUNT(*) FROM hl_webhooks"
                " WHERE failing_since IS NOT NULL AND active = 1 AND deleted = 0"
            )
            return int(c.fetchone()[0])
