"""Read models in tables of the store's own database, kept by following the notification log.

Each projected aggregate's latest state is kept as an encrypted snapshot (the library's own
`Snapshot`, through the application's mapper and cipher), beside a few plain index columns that lists
filter and page on. Events' and deliveries' states are read from their own few stored events instead
(`UNKEPT`): a snapshot would encode, encrypt and write an event's payload, or a delivery's attempts so
far, once more for each of their events. Applying a batch of
notifications and moving the tracked position happen in one transaction, so a restart resumes exactly
where the last batch ended and nothing is applied twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, CanInitAggregate, DomainEventProtocol, Snapshot
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification, Recording

from domain.credentials import Credential
from domain.deliveries import Delivery, DeliveryUpdate
from domain.event_types import EventType
from domain.events import Event
from domain.organizations import ApiKey
from domain.webhooks import Webhook
from store.audit import AUDIT_TABLES, AuditTrail
from store.queries import UNKEPT, ReadModelQueries, moment
from store.sql import database_of
from store.verification import ChainVerifier

A = TypeVar("A", bound=Aggregate)

TRACKING_NAME = "views"
BATCH = 500
CACHE_SIZE = 20_000
RECORDED_HELD = 5_000  # events recorded here and not yet applied, kept decoded for the follower

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS hl_tracking (name TEXT PRIMARY KEY, position {bigint} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hl_states ("
    " id TEXT PRIMARY KEY, version INTEGER NOT NULL, topic TEXT NOT NULL, state {blob} NOT NULL)",
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
    "CREATE TABLE IF NOT EXISTS hl_deliveries ("
    " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, webhook_id TEXT NOT NULL,"
    " event_id TEXT NOT NULL, seq {bigint} NOT NULL, status TEXT NOT NULL, next_attempt_at TEXT,"
    " event_seq {bigint} NOT NULL DEFAULT 0, created_at TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS hl_deliveries_order ON hl_deliveries (webhook_id, status, event_seq)",
    "CREATE INDEX IF NOT EXISTS hl_deliveries_list ON hl_deliveries (organization_id, seq)",
    "CREATE INDEX IF NOT EXISTS hl_deliveries_webhook ON hl_deliveries (webhook_id, seq)",
    "CREATE INDEX IF NOT EXISTS hl_deliveries_event ON hl_deliveries (event_id)",
    "CREATE INDEX IF NOT EXISTS hl_deliveries_status ON hl_deliveries (status)",
    "CREATE TABLE IF NOT EXISTS hl_events ("
    " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, type TEXT NOT NULL,"
    " seq {bigint} NOT NULL, fanned_out INTEGER NOT NULL, recorded_at TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS hl_events_pending ON hl_events (fanned_out)",
    "CREATE INDEX IF NOT EXISTS hl_events_window ON hl_events (organization_id, type, recorded_at)",
    "CREATE TABLE IF NOT EXISTS hl_delivery_updates ("
    " position {bigint} PRIMARY KEY, organization_id TEXT NOT NULL, webhook_id TEXT NOT NULL,"
    " delivery_id TEXT NOT NULL, event_id TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER,"
    " status_code INTEGER, at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS hl_delivery_updates_org ON hl_delivery_updates (organization_id, position)",
    "CREATE TABLE IF NOT EXISTS hl_credentials ("
    " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, seq {bigint} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS hl_credentials_list ON hl_credentials (organization_id, seq)",
    "CREATE TABLE IF NOT EXISTS hl_event_types ("
    " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, name TEXT NOT NULL, seq {bigint} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS hl_event_types_list ON hl_event_types (organization_id, name)",
    "CREATE TABLE IF NOT EXISTS hl_api_keys ("
    " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, seq {bigint} NOT NULL)",
]
PROJECTED = (Webhook, Delivery, Event, Credential, EventType, ApiKey)
_PROJECTED_EVENTS = tuple(kind.Event for kind in PROJECTED)
# Bump when the tables change, or what an audit record holds (its hash changes with it): the read
# models and the audit trail are then dropped and rebuilt from the log, which `verify` recomputes alike.
# 4: events' states are no longer kept in hl_states; 5: nor deliveries'; 6: audit records mask secret
# header values and target URLs' secrets (domain.masking).
SCHEMA_VERSION = 6
READ_MODEL_TABLES = (
    "hl_tracking",
    "hl_states",
    "hl_webhooks",
    "hl_webhook_event_types",
    "hl_deliveries",
    "hl_events",
    "hl_delivery_updates",
    "hl_credentials",
    "hl_event_types",
    "hl_api_keys",
    *AUDIT_TABLES,
)


Observed = tuple[int, DomainEventProtocol[UUID]]
"""A notification's position and its domain event."""
Listener = Callable[[Sequence[Observed]], None]


@dataclass
class _Streak:
    """A webhook's attempts within a batch: its last success, and the first failure after it."""

    last_success: datetime | None = None
    failing_since: datetime | None = None


@dataclass
class _Batch:
    """What one batch of notifications changed, written once at its end."""

    states: dict[UUID, Aggregate] = field(default_factory=dict)
    created: dict[UUID, int] = field(default_factory=dict)  # aggregate → position of its creation
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    streaks: dict[UUID, _Streak] = field(default_factory=dict)


class _Moved(Exception):
    """Another process applied notifications first; the tables are further on than this process."""

    def __init__(self, position: int) -> None:
        self.position = position


class SQLViews(ReadModelQueries):
    """The `Views` port over SQL tables in the event store's database.

    Any number of processes may follow the same store: applying a batch takes the tracking row's lock,
    and a process that finds the tables further on than it thought just continues from there. Each
    process's listeners still see every notification once, in order (`observe`).
    """

    def __init__(
        self, recorder: ApplicationRecorder, mapper: Mapper[UUID], verify_reuse_seconds: float = 2.0
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.db = database_of(recorder)
        self.lock = threading.RLock()
        self.listeners: list[Listener] = []
        self.cache: OrderedDict[UUID, Aggregate] = OrderedDict()
        self.webhook_versions: dict[tuple[str, int], Webhook] = {}
        self.audit = AuditTrail(mapper)
        self.verifier = ChainVerifier(self.db, mapper, verify_reuse_seconds)
        with self.db.transaction(commit=True) as c:
            self.db.serialize(c)  # processes starting together create the tables one at a time
            c.execute("CREATE TABLE IF NOT EXISTS hl_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            c.execute("SELECT value FROM hl_meta WHERE name = 'schema_version'")
            row = c.fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                for table in READ_MODEL_TABLES:  # rebuilt from the log by the next catch-up
                    c.execute(f"DROP TABLE IF EXISTS {table}")
                c.execute(
                    "INSERT INTO hl_meta (name, value) VALUES ('schema_version', ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
            for statement in SCHEMA:
                c.execute(statement.format(blob=self.db.blob, bigint=self.db.bigint))
            self.audit.create_tables(c, self.db)
            c.execute(
                "INSERT INTO hl_tracking (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                (TRACKING_NAME,),
            )
            c.execute("SELECT position FROM hl_tracking WHERE name = ?", (TRACKING_NAME,))
            self.position: int = c.fetchone()[0]  # what the tables reflect
        self.observed = self.position  # what this process's listeners have seen
        self._applied_here: list[Observed] = []
        self._foreign = False
        # Events this process recorded, by position, until the follower applies them: the follower
        # takes them instead of decrypting and decoding what was just encoded here.
        self._recorded: dict[int, DomainEventProtocol[UUID]] = {}
        self._recorded_lock = threading.Lock()

    # -- following the log ----------------------------------------------------------------------

    def recorded(self, recordings: Sequence[Recording[UUID]]) -> None:
        """Told by the application after each save in this process (from any thread)."""
        with self._recorded_lock:
            if len(self._recorded) < RECORDED_HELD:  # a follower far behind decodes the rest itself
                for recording in recordings:
                    position = recording.notification.id
                    if position is not None:
                        self._recorded[position] = recording.domain_event

    def _take_recorded(self, notifications: Sequence[Notification]) -> list[Observed]:
        """The notifications' events: as recorded here when held, else decoded from the store."""
        with self._recorded_lock:
            held = self._recorded
            taken = [held.pop(n.id, None) for n in notifications]
            last = notifications[-1].id
            if held and next(iter(held)) <= last:  # recorded here, but applied before it was told
                for position in [p for p in held if p <= last]:
                    del held[position]
        return [(n.id, event or self._decode(n)) for n, event in zip(notifications, taken, strict=True)]

    def catch_up(self) -> None:
        """Apply everything recorded so far, telling this process's listeners batch by batch (a long
        backlog is never held in memory at once)."""
        with self.lock:
            while True:
                pulled = self._pull()
                self._observe()
                if pulled < BATCH:
                    break

    def _pull(self) -> int:
        """Apply the next batch of notifications; returns how many there were."""
        notifications = self.recorder.select_notifications(
            start=self.position, limit=BATCH, inclusive_of_start=False
        )
        if not notifications:
            return 0
        decoded = self._take_recorded(notifications)
        try:
            with self.db.transaction(commit=True) as c:
                # Take the tracking row's lock first, then check nobody applied these meanwhile.
                c.execute("UPDATE hl_tracking SET position = position WHERE name = ?", (TRACKING_NAME,))
                c.execute("SELECT position FROM hl_tracking WHERE name = ?", (TRACKING_NAME,))
                tracked = c.fetchone()[0]
                if tracked != self.position:
                    raise _Moved(tracked)
                batch = _Batch()
                for seq, domain_event in decoded:
                    self._apply(c, seq, domain_event, batch)
                    self.audit.apply(c, seq, domain_event)
                self._write(c, batch)
                self.audit.write(c)
                c.execute(
                    "UPDATE hl_tracking SET position = ? WHERE name = ?", (decoded[-1][0], TRACKING_NAME)
                )
        except _Moved as moved:
            self._forget()
            self._foreign = True
            self.position = moved.position
            return BATCH  # go on from where the tables are
        except BaseException:
            self._forget()  # the caches may hold states of the batch that was rolled back
            raise
        self.position = decoded[-1][0]
        self._applied_here.extend(decoded)
        return len(decoded)

    def _forget(self) -> None:
        self.cache.clear()
        self.audit.forget()

    def _observe(self) -> None:
        """Hand every notification up to `position` to the listeners, once and in order."""
        if not self._foreign:
            batch = [item for item in self._applied_here if item[0] > self.observed]
            if batch:
                self._tell(batch)
        else:
            while self.observed < self.position:
                notifications = self.recorder.select_notifications(
                    start=self.observed, limit=BATCH, stop=self.position, inclusive_of_start=False
                )
                if not notifications:
                    break
                self._tell([(n.id, self._decode(n)) for n in notifications])
        self._applied_here = []
        self._foreign = False
        self.observed = self.position

    def _tell(self, batch: list[Observed]) -> None:
        self.observed = batch[-1][0]
        for listener in self.listeners:
            listener(batch)

    def held(self, aggregate_id: UUID) -> Aggregate | None:
        return self.cache.get(aggregate_id)

    def states(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """The projected states of some aggregates as they stand now (cached ones first)."""
        found: dict[UUID, Aggregate] = {}
        missing: list[str] = []
        for aggregate_id in ids:
            cached = self.cache.get(aggregate_id)
            if cached is not None:
                found[aggregate_id] = cached
            else:
                missing.append(aggregate_id.hex)
        if missing:
            with self.db.transaction(commit=False) as c:
                found.update({UUID(k): v for k, v in self._states(c, missing).items()})
        return found

    def _decode(self, notification: Notification) -> DomainEventProtocol[UUID]:
        return self.mapper.to_domain_event(notification)

    def _apply(self, c: Any, seq: int, domain_event: DomainEventProtocol[UUID], batch: _Batch) -> None:
        """Moves a projected aggregate's state on by one event (written once per batch, in `_write`)."""
        if not isinstance(domain_event, _PROJECTED_EVENTS):
            return
        aggregate_id = domain_event.originator_id
        previous = batch.states.get(aggregate_id)
        # An aggregate's creation comes after everything the tables reflect: nothing to read for it.
        if previous is None and not isinstance(domain_event, CanInitAggregate):
            previous = self._cached(c, aggregate_id, domain_event.originator_version)
        aggregate = cast(Aggregate, domain_event.mutate(previous))
        self._remember(aggregate)
        batch.states[aggregate_id] = aggregate
        if previous is None:
            batch.created[aggregate_id] = seq
        if isinstance(aggregate, Delivery):
            name = type(domain_event).__qualname__
            if name in ("Delivery.AttemptSucceeded", "Delivery.AttemptFailed"):
                streak = batch.streaks.setdefault(aggregate.webhook_id, _Streak())
                at = aggregate.attempts[-1].started_at
                if name == "Delivery.AttemptSucceeded":
                    streak.last_success, streak.failing_since = at, None
                elif streak.failing_since is None:
                    streak.failing_since = at
            update = DeliveryUpdate.of(seq, aggregate)
            batch.updates.append(
                (
                    seq,
                    update.organization_id.hex,
                    update.webhook_id.hex,
                    update.delivery_id.hex,
                    update.event_id.hex,
                    update.status,
                    update.attempt,
                    update.status_code,
                    update.at.isoformat(),
                )
            )

    def _write(self, c: Any, batch: _Batch) -> None:
        """Writes the batch's final states and index rows, one row per aggregate."""
        states, deliveries, events = [], [], []
        event_seqs = self._event_seqs(c, batch)
        for aggregate_id, aggregate in batch.states.items():
            # An event's or a delivery's state is its few events, already stored (encrypted) in the
            # event store: a snapshot would store its payload, or each attempt so far, once more
            # (a delivery's snapshot grew with each attempt, and was written after each).
            if not isinstance(aggregate, UNKEPT):
                stored = self.mapper.to_stored_event(Snapshot.take(aggregate))
                states.append((aggregate_id.hex, aggregate.version, stored.topic, stored.state))
            created = batch.created.get(aggregate_id)
            seq = created or 0  # an existing row keeps its creation position
            if isinstance(aggregate, Webhook):
                self._index_webhook(c, seq, aggregate, created=created is not None)
            elif isinstance(aggregate, Delivery):
                next_at = aggregate.next_attempt_at
                deliveries.append(
                    (
                        aggregate.id.hex,
                        aggregate.organization_id.hex,
                        aggregate.webhook_id.hex,
                        aggregate.event_id.hex,
                        seq,
                        aggregate.status,
                        next_at.isoformat() if next_at else None,
                        event_seqs.get(aggregate.event_id, 0) if created else 0,
                        moment(aggregate.created_on),
                    )
                )
            elif isinstance(aggregate, Event):
                events.append(
                    (
                        aggregate.id.hex,
                        aggregate.organization_id.hex,
                        aggregate.type,
                        seq,
                        int(aggregate.fanned_out),
                        moment(aggregate.created_on),
                    )
                )
            elif isinstance(aggregate, Credential) and created:
                c.execute(
                    "INSERT INTO hl_credentials (id, organization_id, seq) VALUES (?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (aggregate.id.hex, aggregate.organization_id.hex, seq),
                )
            elif isinstance(aggregate, ApiKey) and created:
                c.execute(
                    "INSERT INTO hl_api_keys (id, organization_id, seq) VALUES (?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (aggregate.id.hex, aggregate.organization_id.hex, seq),
                )
            elif isinstance(aggregate, EventType) and created:
                c.execute(
                    "INSERT INTO hl_event_types (id, organization_id, name, seq) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (aggregate.id.hex, aggregate.organization_id.hex, aggregate.name, seq),
                )
        if states:
            c.executemany(
                "INSERT INTO hl_states (id, version, topic, state) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state",
                states,
            )
        if deliveries:
            c.executemany(
                "INSERT INTO hl_deliveries (id, organization_id, webhook_id, event_id, seq, status,"
                " next_attempt_at, event_seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE"
                " SET status = excluded.status, next_attempt_at = excluded.next_attempt_at",
                deliveries,
            )
        if events:
            c.executemany(
                "INSERT INTO hl_events (id, organization_id, type, seq, fanned_out, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET fanned_out = excluded.fanned_out",
                events,
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
        if batch.updates:
            c.executemany(
                "INSERT INTO hl_delivery_updates (position, organization_id, webhook_id, delivery_id,"
                " event_id, status, attempt, status_code, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch.updates,
            )

    def _index_webhook(self, c: Any, seq: int, webhook: Webhook, *, created: bool) -> None:
        spec = webhook.spec
        if created:
            c.execute(
                "INSERT INTO hl_webhooks (id, organization_id, seq, active, deleted, fingerprint, ordered)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    webhook.id.hex,
                    webhook.organization_id.hex,
                    seq,
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

    def _event_seqs(self, c: Any, batch: _Batch) -> dict[UUID, int]:
        """The positions of the publications of the events the batch's new deliveries are for (the
        order of an ordered webhook's deliveries): from the batch, else read at once."""
        wanted = {
            aggregate.event_id
            for aggregate_id, aggregate in batch.states.items()
            if isinstance(aggregate, Delivery) and aggregate_id in batch.created
        }
        seqs = {event_id: batch.created[event_id] for event_id in wanted if event_id in batch.created}
        missing = [event_id.hex for event_id in wanted if event_id not in seqs]
        if missing:
            c.execute(f"SELECT id, seq FROM hl_events WHERE id IN ({','.join('?' * len(missing))})", missing)
            seqs.update({UUID(row[0]): int(row[1]) for row in c.fetchall()})
        return seqs

    def _cached(self, c: Any, aggregate_id: UUID, version: int) -> Aggregate | None:
        """The state an aggregate's event of `version` applies to: held, kept, or (an event's or a
        delivery's, which are not kept) read from the store up to the version before."""
        aggregate = self.cache.get(aggregate_id)
        if aggregate is not None:
            self.cache.move_to_end(aggregate_id)
            return aggregate
        c.execute("SELECT version, topic, state FROM hl_states WHERE id = ?", (aggregate_id.hex,))
        row = c.fetchone()
        if row:
            return self._restore(aggregate_id, row)
        return self._stored(c, [aggregate_id.hex], below=version).get(aggregate_id)

    def _remember(self, aggregate: Aggregate) -> None:
        self.cache[aggregate.id] = aggregate
        self.cache.move_to_end(aggregate.id)
        if len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
