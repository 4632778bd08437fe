"""The data plane's queries over the read model: what is owed, due, ordered or failing, for the sweeper,
the watchdog, recovery and replays (`ReadModelQueries` has them beside the lists and lookups)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.deliveries import DeliveryStatus
from store.sql import Database, at_moment, moment


class WorkQueries:
    db: Database

    def ordered_head(self, webhook_id: UUID) -> tuple[UUID, datetime | None] | None:
        """An ordered webhook's next delivery: the unfinished one of the earliest event. None while
        there is none, or while an earlier event of its types is not fanned out yet (its delivery
        may come before the one that now looks first)."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT id, next_attempt_at, event_seq FROM hl_deliveries"
                " WHERE webhook_id = ? AND status IN (?, ?) ORDER BY event_seq, seq LIMIT 1",
                (webhook_id.hex, DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value),
            )
            row = c.fetchone()
            if row is None:
                return None
            c.execute(
                "SELECT 1 FROM hl_events e JOIN hl_webhook_event_types t"
                " ON t.webhook_id = ? AND t.event_type = e.type AND t.organization_id = e.organization_id"
                " WHERE e.fanned_out = 0 AND e.seq < ? LIMIT 1",
                (webhook_id.hex, row[2]),
            )
            if c.fetchone() is not None:
                return None
        return UUID(row[0]), at_moment(row[1]) if row[1] else None

    def ordered_webhooks_with_work(self) -> list[UUID]:
        """Ordered webhooks that have unfinished deliveries (the sweeper queues only their heads)."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT DISTINCT d.webhook_id FROM hl_deliveries d JOIN hl_webhooks w ON w.id = d.webhook_id"
                " WHERE w.ordered = 1 AND d.status IN (?, ?)",
                (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value),
            )
            return [UUID(row[0]) for row in c.fetchall()]

    def failed_deliveries(self, webhook_id: UUID, since: datetime) -> list[UUID]:
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT id FROM hl_deliveries WHERE webhook_id = ? AND status = ? AND created_at >= ?"
                " ORDER BY event_seq, seq",
                (webhook_id.hex, DeliveryStatus.FAILED.value, moment(since)),
            )
            return [UUID(row[0]) for row in c.fetchall()]

    def events_between(
        self,
        organization_id: UUID,
        types: Sequence[str],
        start: datetime,
        end: datetime | None,
        after: int,
        limit: int,
    ) -> list[tuple[UUID, int]]:
        """Events of some types recorded in a window, in store order, a page after a position."""
        where = f"organization_id = ? AND type IN ({','.join('?' * len(types))}) AND recorded_at >= ?"
        params: list[Any] = [organization_id.hex, *types, moment(start)]
        if end is not None:
            where += " AND recorded_at <= ?"
            params.append(moment(end))
        with self.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT id, seq FROM hl_events WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",
                [*params, after, limit],
            )
            return [(UUID(row[0]), int(row[1])) for row in c.fetchall()]

    def owed_by(self, delivery_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        with self.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT id, event_id FROM hl_deliveries WHERE id IN ({','.join('?' * len(delivery_ids))})",
                [d.hex for d in delivery_ids],
            )
            return {UUID(row[0]): UUID(row[1]) for row in c.fetchall()}

    def existing_deliveries(self, delivery_ids: Sequence[UUID]) -> set[UUID]:
        if not delivery_ids:
            return set()
        with self.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT id FROM hl_deliveries WHERE id IN ({','.join('?' * len(delivery_ids))})",
                [d.hex for d in delivery_ids],
            )
            return {UUID(row[0]) for row in c.fetchall()}

    def failing_webhooks(self, since_before: datetime) -> list[UUID]:
        """Active webhooks whose attempts have all failed since before a time."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT id FROM hl_webhooks WHERE active = 1 AND deleted = 0"
                " AND failing_since IS NOT NULL AND failing_since <= ?",
                (moment(since_before),),
            )
            return [UUID(row[0]) for row in c.fetchall()]

    def unfinished_deliveries(self, due_before: datetime | None = None) -> list[tuple[UUID, datetime | None]]:
        """Pending and retrying deliveries with their next attempt time (only those due by then), of
        webhooks that are not ordered (an ordered one's go one at a time: see `ordered_head`)."""
        with self.db.transaction(commit=False) as c:
            due = "" if due_before is None else " AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)"
            c.execute(
                "SELECT d.id, d.next_attempt_at FROM hl_deliveries d"
                " JOIN hl_webhooks w ON w.id = d.webhook_id"
                f" WHERE d.status IN (?, ?) AND w.ordered = 0{due} ORDER BY d.seq",
                (
                    DeliveryStatus.PENDING.value,
                    DeliveryStatus.RETRYING.value,
                    *([] if due_before is None else [moment(due_before)]),
                ),
            )
            rows = c.fetchall()
        return [(UUID(r[0]), at_moment(r[1]) if r[1] else None) for r in rows]

    def events_not_fanned_out(self) -> list[UUID]:
        with self.db.transaction(commit=False) as c:
            c.execute("SELECT id FROM hl_events WHERE fanned_out = 0 ORDER BY seq")
            return [UUID(r[0]) for r in c.fetchall()]
