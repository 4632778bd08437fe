"""One projector per aggregate type: the index rows it keeps beside the states, the tables they live
in, and how a batch of notifications changes them (written once, at the batch's end)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import ids
from domain.credentials import Credential
from domain.deliveries import Attempt, Delivery, DeliveryStatus, DeliveryUpdate
from domain.event_types import EventType
from domain.events import Event
from domain.organizations import ApiKey
from domain.webhooks import Webhook
from store import health
from store.sql import Cursor, moment

Changed = Sequence[tuple[Aggregate, int | None]]
"""The batch's aggregates of one type, each with the position of its creation if the batch created it."""

UPDATE_KEYS = 1 << 20
"""Keys of `hl_delivery_updates` (the cursors of deliveryUpdates) for each position of the log: an
event's fan-out at one position makes each delivery it owes an update of its own."""


def update_key(position: int, index: int = 0) -> int:
    return position * UPDATE_KEYS + index


def last_update_key(position: int) -> int:
    """The key of the last update the log up to that position can have made."""
    return update_key(position + 1) - 1


def insert_updates(c: Cursor, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        c.executemany(
            "INSERT INTO hl_delivery_updates (position, organization_id, webhook_id, delivery_id,"
            " event_id, status, attempt, status_code, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


@dataclass
class Streak:
    """A webhook's attempts within a batch: its last success, and the first failure after it."""

    last_success: datetime | None = None
    failing_since: datetime | None = None


@dataclass
class Batch:
    """What one batch of notifications changed, written once at its end."""

    states: dict[UUID, Aggregate] = field(default_factory=dict)
    created: dict[UUID, int] = field(default_factory=dict)  # aggregate → position of its creation
    updates: list[tuple[Any, ...]] = field(default_factory=list)  # rows of hl_delivery_updates
    owed: list[tuple[Any, ...]] = field(default_factory=list)  # rows of deliveries owed by fan-outs
    streaks: dict[UUID, Streak] = field(default_factory=dict)  # by webhook
    health: health.HealthBatch = field(default_factory=health.HealthBatch)


class Projector:
    """Keeps one aggregate type's index rows; its state goes to `hl_states` unless `snapshot` is off."""

    schema: ClassVar[tuple[str, ...]] = ()  # CREATE statements ({bigint} and {blob} as the database has them)
    tables: ClassVar[tuple[str, ...]] = ()
    snapshot: ClassVar[bool] = True

    def applied(self, batch: Batch, seq: int, domain_event: object, aggregate: Aggregate) -> None:
        """After each of the type's events (most types need nothing until the batch ends)."""

    def write(self, c: Cursor, batch: Batch, changed: Changed) -> None:
        raise NotImplementedError


class Webhooks(Projector):
    tables = ("hl_webhooks", "hl_webhook_event_types")
    schema = (
        "CREATE TABLE IF NOT EXISTS hl_webhooks ("
        " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, seq {bigint} NOT NULL,"
        " active INTEGER NOT NULL, deleted INTEGER NOT NULL, fingerprint TEXT NOT NULL,"
        " ordered INTEGER NOT NULL DEFAULT 0, failing_since TEXT, last_success_at TEXT)",
        "CREATE INDEX IF NOT EXISTS hl_webhooks_failing ON hl_webhooks (failing_since)",
        "CREATE INDEX IF NOT EXISTS hl_webhooks_list ON hl_webhooks (organization_id, deleted, seq)",
        "CREATE INDEX IF NOT EXISTS hl_webhooks_fingerprint ON hl_webhooks (organization_id, fingerprint)",
        "CREATE TABLE IF NOT EXISTS hl_webhook_event_types ("
        " webhook_id TEXT NOT NULL, organization_id TEXT NOT NULL, event_type TEXT NOT NULL,"
        " PRIMARY KEY (webhook_id, event_type))",
        "CREATE INDEX IF NOT EXISTS hl_webhook_event_types_lookup"
        " ON hl_webhook_event_types (organization_id, event_type)",
    )

    def write(self, c: Cursor, batch: Batch, changed: Changed) -> None:
        for webhook, created in changed:
            assert isinstance(webhook, Webhook)
            self._index(c, webhook, created)

    def _index(self, c: Cursor, webhook: Webhook, created: int | None) -> None:
        spec = webhook.spec
        if created is not None:
            c.execute(
                "INSERT INTO hl_webhooks (id, organization_id, seq, active, deleted, fingerprint, ordered)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    webhook.id.hex,
                    webhook.organization_id.hex,
                    created,
                    int(webhook.active),
                    int(webhook.deleted),
                    spec.fingerprint(),
                    int(spec.ordered),
                ),
            )
        else:
            # Switched on again: failures before that no longer count towards disabling it.
            c.execute(
                "UPDATE hl_webhooks SET active = ?, deleted = ?, fingerprint = ?, ordered = ?,"
                " failing_since = CASE WHEN active = 0 AND ? = 1 THEN NULL ELSE failing_since END"
                " WHERE id = ?",
                (
                    int(webhook.active),
                    int(webhook.deleted),
                    spec.fingerprint(),
                    int(spec.ordered),
                    int(webhook.active),
                    webhook.id.hex,
                ),
            )
        c.execute("DELETE FROM hl_webhook_event_types WHERE webhook_id = ?", (webhook.id.hex,))
        if not webhook.deleted:
            c.executemany(
                "INSERT INTO hl_webhook_event_types (webhook_id, organization_id, event_type)"
                " VALUES (?, ?, ?)",
                [(webhook.id.hex, webhook.organization_id.hex, t) for t in set(spec.event_types)],
            )


class Events(Projector):
    """Events' rows, and a PENDING row (and live update) for each delivery an event's fan-out owes,
    which its first attempt's outcome then updates (see `Delivery.owed`)."""

    tables = ("hl_events",)
    schema = (
        "CREATE TABLE IF NOT EXISTS hl_events ("
        " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, type TEXT NOT NULL,"
        " seq {bigint} NOT NULL, fanned_out INTEGER NOT NULL, recorded_at TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX IF NOT EXISTS hl_events_pending ON hl_events (fanned_out)",
        "CREATE INDEX IF NOT EXISTS hl_events_window ON hl_events (organization_id, type, recorded_at)",
        "CREATE INDEX IF NOT EXISTS hl_events_backlog ON hl_events (fanned_out, recorded_at)",
    )
    snapshot = False

    def applied(self, batch: Batch, seq: int, domain_event: object, aggregate: Aggregate) -> None:
        if type(domain_event).__qualname__ != "Event.FannedOut":
            return
        assert isinstance(aggregate, Event)
        at = moment(aggregate.modified_on)
        organization, event = aggregate.organization_id.hex, aggregate.id.hex
        for index, webhook_id in enumerate(aggregate.webhook_ids):
            delivery = ids.delivery_id(aggregate.id, webhook_id).hex
            batch.owed.append((delivery, organization, webhook_id.hex, event, seq, at, aggregate.id))
            pending = DeliveryStatus.PENDING.value
            owed = (organization, webhook_id.hex, delivery, event, pending, None, None, at)
            batch.updates.append((update_key(seq, index), *owed))

    def write(self, c: Cursor, batch: Batch, changed: Changed) -> None:
        self._index(c, changed)
        if batch.owed:  # (a delivery a replay made first keeps its row)
            # Plain rows (one statement of arrays in PostgreSQL, see store.sql), each with its event's
            # publication position, from the batch or read at once, rather than a SELECT for each row.
            seqs = event_seqs(c, batch, {row[-1] for row in batch.owed})
            pending = DeliveryStatus.PENDING.value
            rows = [
                (delivery, organization, webhook, event, seq, pending, None, seqs[event_id], at)
                for delivery, organization, webhook, event, seq, at, event_id in batch.owed
                if event_id in seqs  # (an event with no row owes no row)
            ]
            c.executemany(
                "INSERT INTO hl_deliveries (id, organization_id, webhook_id, event_id, seq, status,"
                " next_attempt_at, event_seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                rows,
            )

    def _index(self, c: Cursor, changed: Changed) -> None:
        rows = []
        for event, created in changed:
            assert isinstance(event, Event)
            rows.append(
                (
                    event.id.hex,
                    event.organization_id.hex,
                    event.type,
                    created or 0,
                    int(event.fanned_out),
                    moment(event.created_on),
                )
            )
        c.executemany(
            "INSERT INTO hl_events (id, organization_id, type, seq, fanned_out, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET fanned_out = excluded.fanned_out",
            rows,
        )


ATTEMPTED = ("Delivery.Attempted", "Delivery.AttemptSucceeded", "Delivery.AttemptFailed")


class Deliveries(Projector):
    """Deliveries' rows, the live updates after each of their events, their webhooks' streaks of
    failed attempts (which switch a webhook off, see `failing_webhooks`) and health (`store.health`)."""

    tables = ("hl_deliveries", "hl_delivery_updates", *health.TABLES)
    schema = (
        "CREATE TABLE IF NOT EXISTS hl_deliveries ("
        " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, webhook_id TEXT NOT NULL,"
        " event_id TEXT NOT NULL, seq {bigint} NOT NULL, status TEXT NOT NULL, next_attempt_at TEXT,"
        " event_seq {bigint} NOT NULL DEFAULT 0, created_at TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX IF NOT EXISTS hl_deliveries_order ON hl_deliveries (webhook_id, status, event_seq)",
        "CREATE INDEX IF NOT EXISTS hl_deliveries_list ON hl_deliveries (organization_id, seq)",
        "CREATE INDEX IF NOT EXISTS hl_deliveries_webhook ON hl_deliveries (webhook_id, seq)",
        "CREATE INDEX IF NOT EXISTS hl_deliveries_event ON hl_deliveries (event_id)",
        # The backlog's age (`oldest_due`): deliveries by status and due time (a pending one without a
        # time is due since it was made). It also serves the sweeps' `status IN (...)` (its first column).
        "CREATE INDEX IF NOT EXISTS hl_deliveries_due"
        " ON hl_deliveries (status, (COALESCE(next_attempt_at, created_at)))",
        "CREATE TABLE IF NOT EXISTS hl_delivery_updates ("
        " position {bigint} PRIMARY KEY, organization_id TEXT NOT NULL, webhook_id TEXT NOT NULL,"
        " delivery_id TEXT NOT NULL, event_id TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER,"
        " status_code INTEGER, at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS hl_delivery_updates_org"
        " ON hl_delivery_updates (organization_id, position)",
        *health.SCHEMA,
    )
    snapshot = False

    def applied(self, batch: Batch, seq: int, domain_event: object, aggregate: Aggregate) -> None:
        assert isinstance(aggregate, Delivery)
        name = type(domain_event).__qualname__
        if name in ATTEMPTED:
            attempt = Attempt.from_data(aggregate.attempt_data[-1])
            batch.health.attempted(aggregate.webhook_id, aggregate.organization_id, attempt)
            streak = batch.streaks.setdefault(aggregate.webhook_id, Streak())
            at = attempt.started_at
            if attempt.succeeded:
                streak.last_success, streak.failing_since = at, None
            elif streak.failing_since is None:
                streak.failing_since = at
        update = DeliveryUpdate.of(update_key(seq), aggregate)
        batch.updates.append(
            (
                update.position,
                update.organization_id.hex,
                update.webhook_id.hex,
                update.delivery_id.hex,
                update.event_id.hex,
                update.status,
                update.attempt,
                update.status_code,
                moment(update.at),
            )
        )

    def write(self, c: Cursor, batch: Batch, changed: Changed) -> None:
        event_seqs = self._event_seqs(c, batch, changed)
        rows = []
        for delivery, created in changed:
            assert isinstance(delivery, Delivery)
            next_at = delivery.next_attempt_at
            rows.append(
                (
                    delivery.id.hex,
                    delivery.organization_id.hex,
                    delivery.webhook_id.hex,
                    delivery.event_id.hex,
                    created or 0,  # an existing row keeps its creation position
                    delivery.status,
                    moment(next_at) if next_at else None,
                    event_seqs.get(delivery.event_id, 0) if created else 0,
                    moment(delivery.created_on),
                )
            )
        c.executemany(
            "INSERT INTO hl_deliveries (id, organization_id, webhook_id, event_id, seq, status,"
            " next_attempt_at, event_seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE"
            " SET status = excluded.status, next_attempt_at = excluded.next_attempt_at",
            rows,
        )
        for webhook_id, streak in batch.streaks.items():
            if streak.last_success is not None:
                c.execute(
                    "UPDATE hl_webhooks SET last_success_at = ?, failing_since = ? WHERE id = ?",
                    (
                        moment(streak.last_success),
                        moment(streak.failing_since) if streak.failing_since else None,
                        webhook_id.hex,
                    ),
                )
            elif streak.failing_since is not None:
                c.execute(
                    "UPDATE hl_webhooks SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
                    (moment(streak.failing_since), webhook_id.hex),
                )
        batch.health.write(c)

    def _event_seqs(self, c: Cursor, batch: Batch, changed: Changed) -> dict[UUID, int]:
        """The positions of the publications of the events the batch's new deliveries are for (the
        order of an ordered webhook's deliveries)."""
        wanted = {d.event_id for d, created in changed if created is not None and isinstance(d, Delivery)}
        return event_seqs(c, batch, wanted)


def event_seqs(c: Cursor, batch: Batch, wanted: set[UUID]) -> dict[UUID, int]:
    """The positions of the publications of the `wanted` events that have a row: from the batch
    (events it created), else read at once."""
    seqs = {event_id: batch.created[event_id] for event_id in wanted if event_id in batch.created}
    missing = [event_id.hex for event_id in wanted if event_id not in seqs]
    if missing:
        c.execute(f"SELECT id, seq FROM hl_events WHERE id IN ({','.join('?' * len(missing))})", missing)
        seqs.update({UUID(row[0]): int(row[1]) for row in c.fetchall()})
    return seqs


class Listed(Projector):
    """An aggregate listed by organisation: a row when it is created, never changed."""

    columns: ClassVar[tuple[str, ...]] = ()  # beyond id, organization_id and seq: attributes of the same name

    def write(self, c: Cursor, batch: Batch, changed: Changed) -> None:
        rows = [
            (a.id.hex, a.__dict__["organization_id"].hex, created, *(a.__dict__[n] for n in self.columns))
            for a, created in changed
            if created is not None
        ]
        if rows:
            names = ", ".join(["id", "organization_id", "seq", *self.columns])
            c.executemany(
                f"INSERT INTO {self.tables[0]} ({names}) VALUES ({', '.join('?' * len(rows[0]))})"
                " ON CONFLICT (id) DO NOTHING",
                rows,
            )


class Credentials(Listed):
    tables = ("hl_credentials",)
    schema = (
        "CREATE TABLE IF NOT EXISTS hl_credentials ("
        " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, seq {bigint} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS hl_credentials_list ON hl_credentials (organization_id, seq)",
    )


class EventTypes(Listed):
    tables = ("hl_event_types",)
    schema = (
        "CREATE TABLE IF NOT EXISTS hl_event_types ("
        " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, name TEXT NOT NULL, seq {bigint} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS hl_event_types_list ON hl_event_types (organization_id, name)",
    )
    columns = ("name",)


class ApiKeys(Listed):
    tables = ("hl_api_keys",)
    schema = (
        "CREATE TABLE IF NOT EXISTS hl_api_keys ("
        " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, seq {bigint} NOT NULL)",
    )


# By aggregate type, in the order their rows are written (a webhook's row before its deliveries'
# streaks update it).
PROJECTORS: Mapping[type[Aggregate], Projector] = MappingProxyType(
    {
        Webhook: Webhooks(),
        Event: Events(),
        Delivery: Deliveries(),
        Credential: Credentials(),
        EventType: EventTypes(),
        ApiKey: ApiKeys(),
    }
)
