"""The read model's write side: tables in the store's own database, kept by following its notification
log; the query side (`store.queries`) reads them.

Each projected aggregate's latest state is kept as an encrypted snapshot in `hl_states` (the library's
own `Snapshot`, through the application's mapper and cipher), beside the index rows its projector
(`store.projectors`) keeps for lists to filter and page on; events' and deliveries' states are read
from their own stored events instead (`store.states`). Applying a batch of notifications and moving
the tracked position happen in one transaction, so a restart resumes exactly where the last batch
ended and nothing is applied twice.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from typing import cast
from uuid import UUID

from eventsourcing.domain import Aggregate, CanInitAggregate, DomainEventProtocol, Snapshot
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification, Recording

from domain.events import Event
from domain.webhooks import Webhook
from store.audit import AuditTrail
from store.projectors import PROJECTORS, Batch, Projector, insert_updates
from store.queries import ReadModelQueries
from store.sql import Cursor, database_of
from store.states import StateCache, States
from store.verification import ChainVerifier

TRACKING_NAME = "views"
BATCH = 500
RECORDED_HELD = 5_000  # events recorded here and not yet applied, kept decoded for the follower

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hl_tracking (name TEXT PRIMARY KEY, position {bigint} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hl_states ("
    " id TEXT PRIMARY KEY, version INTEGER NOT NULL, topic TEXT NOT NULL, state {blob} NOT NULL)",
    *(statement for projector in PROJECTORS.values() for statement in projector.schema),
)
# Bump when the tables change: the read models are then dropped and rebuilt from the log. The audit
# trail is not (its `dataHash` of erased data cannot be recomputed): it is versioned on its own
# (`store.audit.CHAIN`).
# 4: events' states are no longer kept in hl_states; 5: nor deliveries'; 6: audit records mask secret
# header values and target URLs' secrets (domain.masking); 7: every time in the tables is a `moment`
# (due times were ISO text of varying width, which SQL could not compare); 8: webhooks' health;
# 9: a fan-out's owed deliveries have rows before anything about them is stored, and live updates are
# keyed by `update_key` (several at one position); 10: webhooks' health keeps its summary (`store.health`);
# 11: no index on deliveries' status alone (hl_deliveries_due begins with it).
SCHEMA_VERSION = 11
READ_MODEL_TABLES = (
    "hl_tracking",
    "hl_states",
    *(table for projector in PROJECTORS.values() for table in projector.tables),
)


Observed = tuple[int, DomainEventProtocol[UUID]]
"""A notification's position and its domain event."""
Listener = Callable[[Sequence[Observed]], None]


ERASED: type = getattr(Event, "Erased")  # noqa: B009 - the class @event("Erased") made


class FollowerWork:
    """What following the log cost this process so far: the serial share of a cluster (every stored
    event passes through one follower), read by the metrics and bench.serial."""

    def __init__(self) -> None:
        self.busy_seconds = 0.0  # wall time inside catch_up (round trips to the store included)
        self.cpu_seconds = 0.0  # the following thread's CPU time inside catch_up
        self.applied = 0  # notifications applied by this process

    def add(self, busy: float, cpu: float) -> None:
        self.busy_seconds += busy
        self.cpu_seconds += cpu


class _Moved(Exception):
    """Another process applied notifications first; the tables are further on than this process."""

    def __init__(self, position: int) -> None:
        self.position = position


class ReadModel:
    """Follows the store's log into the read model's tables; `queries` answers from them.

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
        self.cache = StateCache()
        self.states = States(self.db, mapper, self.cache)
        self.audit = AuditTrail(self.db, mapper)
        self.verifier = ChainVerifier(self.db, mapper, verify_reuse_seconds)
        self.position: int = self._create_tables()  # what the tables reflect
        self.observed = self.position  # what this process's listeners have seen
        self.queries = ReadModelQueries(
            self.db, self.states, self.audit, self.verifier, lambda: self.position
        )
        self._applied_here: list[Observed] = []
        self._foreign = False
        # Events this process recorded, by position, until the follower applies them: the follower
        # takes them instead of decrypting and decoding what was just encoded here.
        self._recorded: dict[int, DomainEventProtocol[UUID]] = {}
        self._recorded_lock = threading.Lock()
        self._projector_of: dict[type, Projector | None] = {}
        self.work = FollowerWork()

    def _create_tables(self) -> int:
        """Creates the tables (dropping them first when their schema changed); the tracked position."""
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
            self.audit.create_tables(c, had_read_model=row is not None)
            c.execute(
                "INSERT INTO hl_tracking (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                (TRACKING_NAME,),
            )
            c.execute("SELECT position FROM hl_tracking WHERE name = ?", (TRACKING_NAME,))
            return int(c.fetchone()[0])

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
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                while True:
                    pulled = self._pull()
                    self._observe()
                    if pulled < BATCH:
                        break
            finally:
                self.work.add(time.perf_counter() - started, time.thread_time() - cpu_started)

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
                batch = Batch()
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
        self.work.applied += len(decoded)
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

    def _decode(self, notification: Notification) -> DomainEventProtocol[UUID]:
        return self.mapper.to_domain_event(notification)

    def _projector(self, event_type: type) -> Projector | None:
        """The projector of the aggregate an event of this type belongs to, if it is projected (the
        answer is kept for the next event of the type)."""
        projector = next((p for kind, p in PROJECTORS.items() if issubclass(event_type, kind.Event)), None)
        self._projector_of[event_type] = projector
        return projector

    def _apply(self, c: Cursor, seq: int, domain_event: DomainEventProtocol[UUID], batch: Batch) -> None:
        """Moves a projected aggregate's state on by one event (written once per batch, in `_write`)."""
        try:
            projector = self._projector_of[type(domain_event)]
        except KeyError:
            projector = self._projector(type(domain_event))
        if projector is None:
            return
        aggregate_id = domain_event.originator_id
        previous = batch.states.get(aggregate_id)
        # An aggregate's creation comes after everything the tables reflect: nothing to read for it.
        if previous is None and not isinstance(domain_event, CanInitAggregate):
            previous = self.states.previous(c, aggregate_id, domain_event.originator_version)
            if previous is None:  # an aggregate retention removed meanwhile: nothing left to move on
                return
        if isinstance(previous, Webhook):  # a webhook's state is held as it was at each version
            previous = copy.copy(previous)
        # (A projected aggregate's event: it has `mutate`; a `cast` would cost a call for each.)
        aggregate: Aggregate = domain_event.mutate(previous)  # type: ignore[attr-defined]
        if isinstance(domain_event, ERASED):  # what is held of its deliveries may have bodies
            self.cache.drop(cast(Event, aggregate).owed())
        self.cache.put(aggregate)
        batch.states[aggregate_id] = aggregate
        if previous is None:
            batch.created[aggregate_id] = seq
        projector.applied(batch, seq, domain_event, aggregate)

    def _write(self, c: Cursor, batch: Batch) -> None:
        """Writes the batch's final states and each projector's rows."""
        changed: dict[Projector, list[tuple[Aggregate, int | None]]] = {p: [] for p in PROJECTORS.values()}
        states = []
        for aggregate_id, aggregate in batch.states.items():
            projector = PROJECTORS[type(aggregate)]
            changed[projector].append((aggregate, batch.created.get(aggregate_id)))
            if projector.snapshot:
                stored = self.mapper.to_stored_event(Snapshot.take(aggregate))
                states.append((aggregate_id.hex, aggregate.version, stored.topic, stored.state))
        if states:
            c.executemany(
                "INSERT INTO hl_states (id, version, topic, state) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state",
                states,
            )
        for projector, aggregates in changed.items():
            if aggregates:
                projector.write(c, batch, aggregates)
        insert_updates(c, batch.updates)
