"""Verifying an organisation's audit chain against the stored events, reading only that organisation's.

The chain is recomputed from the events at the positions of the organisation's trail (`hl_audit`), in
store order, and compared with the trail, each record's data with its `dataHash` (an erased record's
data, gone, enters only through the hash the trail holds): an event that was changed or removed breaks
it at its position, and so does an event slipped in for one of the aggregates its trail names. No
other organisation's event is read. (An event slipped in under a new aggregate id is not looked for:
telling whose it is would take decrypting every stored event, the cost this module exists to avoid.)

At most one verification of an organisation runs at a time: a caller that comes meanwhile waits for it
and shares its answer, and so does one that comes shortly after while the organisation's trail has not
grown (the answer would be the same), so that a request asking many times costs one verification.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent

from domain.audit import GENESIS, Verification, data_hash, named_owner, record_hash, record_of
from store.audit import removed_runs, stored_events_at
from store.sql import Database

BATCH = 1000  # events read, or ids looked up, per statement
MISSING = "recorded event is missing from the store"
UNREADABLE = "stored event unreadable"
CHANGED = "record does not match"
DATA_CHANGED = "data does not match dataHash"
ADDED = "stored event is not in the trail"


class ChainVerifier:
    """Verifies organisations' chains, one run per organisation at a time (see the module)."""

    def __init__(
        self,
        db: Database,
        mapper: Mapper[UUID],
        reuse_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.mapper = mapper
        self.reuse_seconds = reuse_seconds
        self.clock = clock
        self.verified: list[Callable[[int], None]] = []  # told how many stored events each run read
        self._runs: dict[UUID, _Run] = {}
        self._lock = threading.Lock()

    def verify(self, organization_id: UUID, until: int) -> Verification:
        """The organisation's chain up to store position `until` (the follower may write further)."""
        head = self._head(organization_id, until)
        with self._lock:
            now = self.clock()
            for organization, past in list(self._runs.items()):
                if past.finished_at is not None and now - past.finished_at >= self.reuse_seconds:
                    del self._runs[organization]
            run = self._runs.get(organization_id)
            leading = run is None or not run.answers(head)
            if leading:
                run = self._runs[organization_id] = _Run(head)
        assert run is not None
        if leading:
            self._lead(run, organization_id, until)
        run.done.wait()
        if run.error is not None:
            raise run.error
        assert run.result is not None
        return run.result

    def _lead(self, run: _Run, organization_id: UUID, until: int) -> None:
        events = _StoredEvents(self.db, self.mapper)
        try:
            run.result = _verify(events, organization_id, until)
        except BaseException as error:
            run.error = error
            raise
        finally:
            run.finished_at = self.clock()
            run.done.set()
            for listener in self.verified:
                listener(events.read)

    def _head(self, organization_id: UUID, until: int) -> int:
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT MAX(position) FROM hl_audit WHERE organization_id = ? AND position <= ?",
                (organization_id.bytes, until),
            )
            row = c.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


@dataclass
class _Run:
    head: int  # the organisation's last trail position it covers
    done: threading.Event = field(default_factory=threading.Event)
    result: Verification | None = None
    error: BaseException | None = None
    finished_at: float | None = None

    def answers(self, head: int) -> bool:
        """Whether a caller who finds the trail's head at `head` may take this run's answer."""
        if not self.done.is_set():
            return True
        return self.error is None and self.head == head


def _verify(events: _StoredEvents, organization_id: UUID, until: int) -> Verification:
    trail = events.trail(organization_id, until)
    positions = sorted(trail)
    added = _first_added(events, organization_id, until, trail)
    runs = events.removed(organization_id, until)  # the chain goes on from each run's last hash
    previous, reached = GENESIS, 0
    checked = 0
    for start in range(0, len(positions), BATCH):
        batch = positions[start : start + BATCH]
        stored = events.at(batch)
        for position in batch:
            if added is not None and added < position:
                return Verification(False, checked, added, ADDED)
            while runs and runs[0][1] < position:
                first, _, digest = runs.pop(0)
                if first > reached:
                    previous = digest
            found = stored.get(position)
            if found is None:
                return Verification(False, checked, position, MISSING)
            domain_event = events.decode(found)
            if domain_event is None:  # undecryptable or undecodable: the stored event was altered
                return Verification(False, checked, position, UNREADABLE)
            record = record_of(position, organization_id, domain_event)
            digest, claimed_previous, claimed_data = trail[position]
            if not record["erased"] and data_hash(record["data"]) != claimed_data:
                return Verification(False, checked, position, DATA_CHANGED)
            computed = record_hash(previous, record, claimed_data)
            if (digest, claimed_previous) != (computed, previous):
                return Verification(False, checked, position, CHANGED)
            previous, reached = digest, position
            checked += 1
    if added is not None:
        return Verification(False, checked, added, ADDED)
    return Verification(True, checked)


def _first_added(
    events: _StoredEvents, organization_id: UUID, until: int, trail: dict[int, tuple[str, str, str]]
) -> int | None:
    """The first stored event of one of the organisation's aggregates that its trail does not hold."""
    positions = events.of_aggregates(events.aggregates(organization_id), until)
    for position in sorted(p for p in positions if p not in trail):
        found = events.at([position]).get(position)
        domain_event = events.decode(found) if found is not None else None
        if domain_event is None:  # unreadable and in no record of its: nothing of it was shown
            continue
        if (named_owner(domain_event) or organization_id) == organization_id:
            return position
    return None


class _StoredEvents:
    """What a verification reads: the trail's rows and, by position or aggregate, stored events,
    counting the events it decrypts."""

    def __init__(self, db: Database, mapper: Mapper[UUID]) -> None:
        self.db = db
        self.mapper = mapper
        self.read = 0

    def trail(self, organization_id: UUID, until: int) -> dict[int, tuple[str, str, str]]:
        """The organisation's trail by position: hash, previous hash and data hash, in hex."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT position, hash, previous_hash, data_hash FROM hl_audit"
                " WHERE organization_id = ? AND position <= ?",
                (organization_id.bytes, until),
            )
            return {
                row[0]: (bytes(row[1]).hex(), bytes(row[2]).hex(), bytes(row[3]).hex())
                for row in c.fetchall()
            }

    def removed(self, organization_id: UUID, until: int) -> list[tuple[int, int, str]]:
        """The organisation's runs of records removed by retention: first, last position, last hash."""
        with self.db.transaction(commit=False) as c:
            runs = removed_runs(c, organization_id, until)
        return [(run["first"], run["position"], run["hash"]) for run in runs]

    def at(self, positions: Sequence[int]) -> dict[int, StoredEvent]:
        with self.db.transaction(commit=False) as c:
            return stored_events_at(c, self.db, positions)

    def aggregates(self, organization_id: UUID) -> list[str]:
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT DISTINCT aggregate_id FROM hl_audit WHERE organization_id = ?",
                (organization_id.bytes,),
            )
            return [UUID(bytes=bytes(row[0])).hex for row in c.fetchall()]

    def of_aggregates(self, aggregates: Sequence[str], until: int) -> list[int]:
        """The positions of the aggregates' stored events."""
        db = self.db
        found: list[int] = []
        for start in range(0, len(aggregates), BATCH):
            batch = aggregates[start : start + BATCH]
            with db.transaction(commit=False) as c:
                c.execute(
                    f"SELECT {db.position} FROM {db.events}"
                    f" WHERE originator_id IN ({','.join('?' * len(batch))}) AND {db.position} <= ?",
                    [*batch, until],
                )
                found.extend(row[0] for row in c.fetchall())
        return found

    def decode(self, stored: StoredEvent) -> DomainEventProtocol[UUID] | None:
        self.read += 1
        try:
            return self.mapper.to_domain_event(stored)
        except Exception:  # undecryptable or undecodable
            return None
