"""Webhooks' health in the read model: one row per webhook holding its `HealthRecord` (its streak and
its hours of the last day), moved on once per batch by the attempts the batch recorded, and read for
a page of webhooks in one query.

Beside the record, the row keeps its health as of the batch that wrote it (`summary`, with the window's
first hour): a read within the same window takes it as it is, and only a row last written in an earlier
window (a webhook quiet since) is summed again from its hours. Summing costs tens of microseconds a
webhook (decoding 24 hours of histograms and codes), which a list of 1 000 webhooks would pay on every
request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import orjson

from domain.deliveries import Attempt
from domain.health import HealthRecord, WebhookHealth, window_start
from store.sql import Cursor, Database, at_moment, moment

TABLES = ("hl_webhook_health",)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hl_webhook_health ("
    " webhook_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL,"
    " record TEXT NOT NULL, summary TEXT NOT NULL)",
)


def _encode(record: HealthRecord) -> str:
    return orjson.dumps(
        {
            "consecutive_failures": record.consecutive_failures,
            "last_success_at": moment(record.last_success_at) if record.last_success_at else None,
            "last_failure_at": moment(record.last_failure_at) if record.last_failure_at else None,
            "hours": record.hours,
        }
    ).decode()


def _decode(text: str) -> HealthRecord:
    data = orjson.loads(text)
    success, failure = data["last_success_at"], data["last_failure_at"]
    return HealthRecord(
        consecutive_failures=data["consecutive_failures"],
        last_success_at=at_moment(success) if success else None,
        last_failure_at=at_moment(failure) if failure else None,
        hours=data["hours"],
    )


def _time(value: datetime | None) -> str | None:
    return moment(value) if value else None


def _encode_summary(health: WebhookHealth, since: str) -> str:
    return orjson.dumps(
        [
            since,
            health.attempts,
            health.failures,
            health.latency_p50_ms,
            health.latency_p95_ms,
            health.consecutive_failures,
            _time(health.last_success_at),
            _time(health.last_failure_at),
            health.status_codes,
        ]
    ).decode()


def _decode_summary(text: str, since: str) -> WebhookHealth | None:
    """The health kept in `text` when it is that of the window starting at `since`, else None."""
    kept, attempts, failures, p50, p95, streak, success, failure, codes = orjson.loads(text)
    if kept != since:
        return None
    return WebhookHealth(
        attempts=attempts,
        failures=failures,
        success_rate=(attempts - failures) / attempts if attempts else None,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        consecutive_failures=streak,
        last_success_at=at_moment(success) if success else None,
        last_failure_at=at_moment(failure) if failure else None,
        status_codes=[(code, count) for code, count in codes],
    )


class HealthBatch:
    """A batch's attempts, by webhook in the order recorded, applied to their records at its end."""

    def __init__(self) -> None:
        self.attempts: dict[UUID, tuple[UUID, list[Attempt]]] = {}  # webhook → (organisation, attempts)

    def attempted(self, webhook_id: UUID, organization_id: UUID, attempt: Attempt) -> None:
        self.attempts.setdefault(webhook_id, (organization_id, []))[1].append(attempt)

    def write(self, c: Cursor, now: datetime | None = None) -> None:
        """Moves the records on and keeps each one's health as of `now` (the wall clock's)."""
        if not self.attempts:
            return
        now = now or datetime.now(UTC)
        since = window_start(now)
        ids = [webhook_id.hex for webhook_id in self.attempts]
        c.execute(
            "SELECT webhook_id, record FROM hl_webhook_health"
            f" WHERE webhook_id IN ({','.join('?' * len(ids))})",
            ids,
        )
        records = {UUID(row[0]): _decode(row[1]) for row in c.fetchall()}
        rows = []
        for webhook_id, (organization_id, attempts) in self.attempts.items():
            record = records.get(webhook_id) or HealthRecord()
            for attempt in attempts:
                record.attempted(attempt)
            summary = _encode_summary(record.health(now), since)
            rows.append((webhook_id.hex, organization_id.hex, _encode(record), summary))
        c.executemany(
            "INSERT INTO hl_webhook_health (webhook_id, organization_id, record, summary) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (webhook_id) DO UPDATE SET record = excluded.record, summary = excluded.summary",
            rows,
        )


def read_health(
    db: Database, organization_id: UUID, webhook_ids: Sequence[UUID], now: datetime
) -> dict[UUID, WebhookHealth]:
    """The health of an organisation's webhooks over the day that ends `now`; a webhook never
    attempted has none here."""
    if not webhook_ids:
        return {}
    ids = [webhook_id.hex for webhook_id in webhook_ids]
    with db.transaction(commit=False) as c:
        c.execute(
            "SELECT webhook_id, record, summary FROM hl_webhook_health"
            f" WHERE organization_id = ? AND webhook_id IN ({','.join('?' * len(ids))})",
            [organization_id.hex, *ids],
        )
        rows = c.fetchall()
    since = window_start(now)
    found = {}
    for webhook_id, record, summary in rows:
        health = _decode_summary(summary, since)
        found[UUID(webhook_id)] = health if health is not None else _decode(record).health(now)
    return found
