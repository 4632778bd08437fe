"""Retention's removals in the store: deliveries past an organisation's `deliveries` window go, with
their events, in bounded batches (one transaction each, so deliveries never wait long for the store).

A batch takes an organisation's oldest events that were fanned out before the window's start and whose
deliveries are all done (none PENDING or RETRYING, whatever its age), and removes, for the event and
each of its deliveries: the stored events, their read-model rows (`hl_events`, `hl_deliveries`, their
live updates, `hl_states`) and their audit records. Only what the log follower already applied goes
(positions up to the tracked one), and never the store's last stored event (SQLite would give its
position again). Each run of removed audit records is kept per organisation in `hl_audit_removed`
(first and last position, the last one's hash; adjacent runs merged), so that verification and the
export continue the chain past it (see `store.audit`). The space is reused (`RetentionStore.reclaim`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog

from domain.retention import RetentionPolicy
from store.projectors import update_key
from store.sql import Cursor, Database, PostgresDatabase, moment

BATCH_DELIVERIES = 500  # deliveries removed in one transaction at most
SWEEP_LOCK = 0x52657465  # "Rete": one sweep at a time across gateways (PostgreSQL)
DONE = ("SUCCEEDED", "FAILED")
ERASE_AHEAD = 200  # events looked at (and erased) per batch of the payloads window (store.erasure.BATCH)
SWEPT = ("hl_events", "hl_deliveries", "hl_delivery_updates", "hl_states", "hl_audit")

log = structlog.get_logger("hookline")


@dataclass(frozen=True)
class Removed:
    events: int = 0
    deliveries: int = 0
    busy: bool = False  # another gateway was sweeping: this one left it alone


class RetentionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cursors = False

    def erase(
        self, organization_id: UUID, before: datetime, erase: Callable[[list[UUID], datetime], int]
    ) -> int:
        """One batch of the `payloads` window: the organisation's events recorded before `before`,
        from where the last batch stopped, whose deliveries are all done, erased by `erase`
        (`store.erasure` through the read model, which drops what it holds of them). An event whose
        deliveries are not all done is left, and the next batch starts again from it (so a delivery
        RETRYING for long holds back the erasure of the events after it, up to ERASE_AHEAD of them,
        until it ends). Returns how many events the batch went past (0: nothing left for now)."""
        org = organization_id.hex
        with self.db.transaction(commit=True) as c:
            if not self._cursors:
                c.execute(
                    "CREATE TABLE IF NOT EXISTS hl_retention_erased (organization_id TEXT PRIMARY KEY,"
                    " recorded_at TEXT NOT NULL, event_id TEXT NOT NULL)"
                )
                self._cursors = True
            c.execute(
                "SELECT recorded_at, event_id FROM hl_retention_erased WHERE organization_id = ?", (org,)
            )
            cursor = c.fetchone() or ("", "")
            c.execute(
                "SELECT e.id, e.recorded_at, NOT EXISTS (SELECT 1 FROM hl_deliveries d"
                f"  WHERE d.event_id = e.id AND d.status NOT IN ('{DONE[0]}', '{DONE[1]}'))"
                " FROM hl_events e WHERE e.organization_id = ? AND e.fanned_out = 1"
                " AND e.recorded_at < ? AND (e.recorded_at > ? OR (e.recorded_at = ? AND e.id > ?))"
                " ORDER BY e.recorded_at, e.id LIMIT ?",
                (org, moment(before), cursor[0], cursor[0], cursor[1], ERASE_AHEAD),
            )
            rows = c.fetchall()
        done = [UUID(hex=row[0]) for row in rows if row[2]]
        if done:
            erase(done, datetime.now(UTC))
        passed = next((i for i, row in enumerate(rows) if not row[2]), len(rows))
        if passed:
            with self.db.transaction(commit=True) as c:
                c.execute(
                    "INSERT INTO hl_retention_erased (organization_id, recorded_at, event_id)"
                    " VALUES (?, ?, ?) ON CONFLICT (organization_id) DO UPDATE"
                    " SET recorded_at = excluded.recorded_at, event_id = excluded.event_id",
                    (org, rows[passed - 1][1], rows[passed - 1][0]),
                )
        return passed

    def organizations(self) -> list[UUID]:
        """Every organisation with an audit trail (every one that ever recorded anything)."""
        with self.db.transaction(commit=False) as c:
            c.execute("SELECT organization_id FROM hl_audit_heads")
            return [UUID(row[0]) for row in c.fetchall()]

    def remove(self, organization_id: UUID, before: datetime, limit: int = BATCH_DELIVERIES) -> Removed:
        """One batch: the organisation's oldest done deliveries of events recorded before `before`."""
        with self.db.transaction(commit=True) as c:
            if isinstance(self.db, PostgresDatabase):
                c.execute("SELECT pg_try_advisory_xact_lock(?)", (SWEEP_LOCK,))
                if not c.fetchone()[0]:
                    return Removed(busy=True)
            else:  # SQLite: take the write lock first (as the follower does), so the reads below hold
                c.execute("UPDATE hl_tracking SET position = position WHERE name = 'views'")
            c.execute("SELECT position FROM hl_tracking WHERE name = 'views'")
            tracked = int(c.fetchone()[0])
            c.execute(f"SELECT MAX({self.db.position}) FROM {self.db.events}")
            last = int(c.fetchone()[0] or 0)
            events = self._candidates(c, organization_id, before, tracked, limit)
            if not events:
                return Removed()
            deliveries = self._deliveries(c, list(events))
            chosen, delivery_ids = _bounded(events, deliveries, limit)
            stored = self._stored(c, [*chosen, *delivery_ids])
            late = {aggregate for position, aggregate in stored if position > tracked or position >= last}
            if late:  # something of theirs is not applied yet (or is the store's last): not now
                kept_events = {e for e in chosen if e in late or any(d in late for d in deliveries[e])}
                chosen = [e for e in chosen if e not in kept_events]
                delivery_ids = [d for e in chosen for d in deliveries[e]]
                aggregates = set(chosen) | set(delivery_ids)
                stored = [(p, a) for p, a in stored if a in aggregates]
            if not chosen:
                return Removed()
            self._delete(c, organization_id, chosen, delivery_ids, [p for p, _ in stored])
            return Removed(events=len(chosen), deliveries=len(delivery_ids))

    def _candidates(
        self, c: Cursor, organization_id: UUID, before: datetime, tracked: int, limit: int
    ) -> dict[str, int]:
        c.execute(
            "SELECT e.id, e.seq FROM hl_events e"
            " WHERE e.fanned_out = 1 AND e.recorded_at < ? AND e.organization_id = ? AND e.seq <= ?"
            " AND NOT EXISTS (SELECT 1 FROM hl_deliveries d"
            f"  WHERE d.event_id = e.id AND d.status NOT IN ('{DONE[0]}', '{DONE[1]}'))"
            " ORDER BY e.recorded_at LIMIT ?",
            (moment(before), organization_id.hex, tracked, limit),
        )
        return {row[0]: row[1] for row in c.fetchall()}

    def _deliveries(self, c: Cursor, event_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {e: [] for e in event_ids}
        c.execute(
            f"SELECT event_id, id FROM hl_deliveries WHERE event_id IN ({','.join('?' * len(event_ids))})",
            list(event_ids),
        )
        for event_id, delivery_id in c.fetchall():
            found[event_id].append(delivery_id)
        return found

    def _stored(self, c: Cursor, aggregates: Sequence[str]) -> list[tuple[int, str]]:
        """The positions of the aggregates' stored events, each with its aggregate (hex)."""
        db = self.db
        c.execute(
            f"SELECT {db.position}, originator_id FROM {db.events}"
            f" WHERE originator_id IN ({','.join('?' * len(aggregates))})",
            list(aggregates),
        )
        return [(int(row[0]), _hex(row[1])) for row in c.fetchall()]

    def _delete(
        self,
        c: Cursor,
        organization_id: UUID,
        events: Sequence[str],
        deliveries: Sequence[str],
        positions: Sequence[int],
    ) -> None:
        aggregates = [*events, *deliveries]
        c.execute(
            f"SELECT position, hash FROM hl_audit WHERE position IN ({_marks(positions)})"
            " AND organization_id = ? ORDER BY position",
            [*positions, organization_id.bytes],
        )
        removed = [(int(row[0]), bytes(row[1])) for row in c.fetchall()]
        for statement, ids in (
            (f"DELETE FROM {self.db.events} WHERE originator_id IN", aggregates),
            ("DELETE FROM hl_events WHERE id IN", events),
            ("DELETE FROM hl_deliveries WHERE id IN", deliveries),
            ("DELETE FROM hl_states WHERE id IN", aggregates),
        ):
            if ids:
                c.execute(f"{statement} ({_marks(ids)})", list(ids))
        if positions:
            c.execute(f"DELETE FROM hl_audit WHERE position IN ({_marks(positions)})", list(positions))
            c.executemany(
                "DELETE FROM hl_delivery_updates WHERE position >= ? AND position < ?",
                [(update_key(p), update_key(p + 1)) for p in positions],
            )
        if removed:
            record_runs(c, organization_id, removed)

    def reclaim(self) -> None:
        """After a sweep removed rows, makes their space reusable at once. SQLite: free pages are
        reused as they are; the write-ahead log is written back into the file (PASSIVE: never waiting
        for a writer), so that it stays bounded. PostgreSQL: a plain VACUUM of the tables it deleted
        from (no lock that stops reads or writes; pages the visibility map knows are untouched are
        skipped), rather than waiting for autovacuum's next round, up to a minute and 20 % of a table
        away."""
        with self.db.transaction(commit=False) as c:
            if isinstance(self.db, PostgresDatabase):
                tables = [self.db.events, *SWEPT]
                c.execute(f"VACUUM (SKIP_LOCKED) {', '.join(tables)}")
            else:
                c.execute("PRAGMA wal_checkpoint(PASSIVE)")
                c.fetchall()


def record_runs(c: Cursor, organization_id: UUID, removed: Sequence[tuple[int, bytes]]) -> None:
    """Adds removed records (position, hash; in order) to the organisation's runs, merging runs that no
    kept record separates."""
    org = organization_id.bytes
    first, last = removed[0][0], removed[-1][0]
    c.execute(
        "SELECT position FROM hl_audit WHERE organization_id = ? AND position > ? AND position < ?",
        (org, first, last),
    )
    kept = sorted(int(row[0]) for row in c.fetchall())
    runs: list[list[Any]] = []  # [first, last, hash]
    index = 0
    for position, digest in removed:
        split = False
        while index < len(kept) and kept[index] < position:
            index, split = index + 1, True
        if runs and not split:
            runs[-1][1:] = [position, digest]
        else:
            runs.append([position, position, digest])
    c.execute(
        "SELECT first_position, last_position, last_hash FROM hl_audit_removed WHERE organization_id = ?",
        (org,),
    )
    runs.extend([int(a), int(b), bytes(h)] for a, b, h in c.fetchall())
    runs.sort()
    merged = [runs[0]]
    for run in runs[1:]:
        previous = merged[-1]
        c.execute(
            "SELECT 1 FROM hl_audit WHERE organization_id = ? AND position > ? AND position < ? LIMIT 1",
            (org, previous[1], run[0]),
        )
        if c.fetchone() is None:
            previous[1:] = [run[1], run[2]]
        else:
            merged.append(run)
    c.execute("DELETE FROM hl_audit_removed WHERE organization_id = ?", (org,))
    c.executemany(
        "INSERT INTO hl_audit_removed (organization_id, first_position, last_position, last_hash)"
        " VALUES (?, ?, ?, ?)",
        [(org, a, b, h) for a, b, h in merged],
    )


def _bounded(
    events: dict[str, int], deliveries: dict[str, list[str]], limit: int
) -> tuple[list[str], list[str]]:
    """The events, oldest first, whose deliveries make at most `limit` (at least one event)."""
    chosen: list[str] = []
    delivery_ids: list[str] = []
    for event_id in events:
        owed = deliveries[event_id]
        if chosen and len(delivery_ids) + len(owed) > limit:
            break
        chosen.append(event_id)
        delivery_ids.extend(owed)
    return chosen, delivery_ids


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _hex(value: Any) -> str:
    return value.hex if isinstance(value, UUID) else UUID(str(value)).hex


Policies = Callable[[list[UUID]], Mapping[UUID, RetentionPolicy]]
Erase = Callable[[list[UUID], datetime], int]
"""Erases these events' payloads and their deliveries' bodies (the read model's `erase_events`)."""


def sweep(
    store: RetentionStore,
    policies: Policies,
    tick: Callable[[], None] = lambda: None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    pause: float = 0.02,
    erase: Erase | None = None,
) -> Removed:
    """One sweep: batch after batch for each organisation with a `deliveries` window (and, given
    `erase`, a `payloads` window first), pausing between batches so that others' writes take the
    store in turn; `tick` after each batch."""
    events = deliveries = 0
    for organization_id, policy in policies(store.organizations()).items():
        erasing = policy.payloads_window
        while (
            erase is not None
            and erasing is not None
            and store.erase(organization_id, clock() - erasing, erase)
        ):
            tick()
            time.sleep(pause)
        window = policy.deliveries_window
        if window is None:
            continue
        while True:
            removed = store.remove(organization_id, clock() - window)
            tick()
            if removed.busy:
                return Removed(events, deliveries, busy=True)
            events, deliveries = events + removed.events, deliveries + removed.deliveries
            if not removed.events:
                break
            time.sleep(pause)
    if events:
        store.reclaim()
        log.info("retention removed deliveries and their events", events=events, deliveries=deliveries)
    return Removed(events, deliveries)
