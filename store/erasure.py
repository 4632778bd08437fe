"""Erasure of events' payloads and their deliveries' bodies, in the stored events themselves.

`erase_events(db, mapper, event_ids, at) -> int` erases, for each event named, the payload of its
`Event.Published` and the response body of every attempt its deliveries recorded (`Delivery.Attempted`,
`AttemptSucceeded`, `AttemptFailed`), and returns how many events it erased now (one erased before, or
unknown, counts 0: it can be called again). Rendered request bodies are not stored (they are rendered
from the payload at each attempt), so erasing the payload erases them. Each stored event concerned is
decoded with the store's mapper, its body set to None, marked `erased: True` and `erased_at`, and
encoded (and encrypted) again into the same row (same originator id and version), in one transaction
per call: give it bounded batches (the retention sweep does, `BATCH` ids at most at once). Kept:
statuses, attempt numbers, times, status codes, errors, ids. Works on SQLite and PostgreSQL.

Rewrite, not crypto-shredding: the audit trail (chain v2, `domain.audit`) keeps only hashes, and reads a
record's data from its stored event; a stored event marked `erased` reads as `data: null, erased: true`
with the same `dataHash`, so the chain and its signed checkpoints still verify. A key per event to
forget would need every stored event of an event's deliveries encrypted under it, and would leave
the record's kept fields (status, times) unreadable too.

Aggregates load from erased events: an extra `erased`/`erased_at` attribute is not passed to the
methods that apply events, a payload of None makes `Event.erased` true, and an attempt's `erased`
key is read by `Attempt.from_data`. The caller must first give up the deliveries still PENDING or
RETRYING (an erased body is never sent) and then forget what caches hold of these aggregates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from domain import ids
from store.sql import Cursor, Database

BATCH = 200  # event ids at most per call, as the sweep gives them


def erase_events(db: Database, mapper: Mapper[UUID], event_ids: Iterable[UUID], at: datetime) -> int:
    """Erases the events' payloads and their deliveries' response bodies in place (see the module's
    docstring); returns how many of them were erased by this call."""
    return erase_events_and_deliveries(db, mapper, event_ids, at)[0]


def erase_events_and_deliveries(
    db: Database, mapper: Mapper[UUID], event_ids: Iterable[UUID], at: datetime
) -> tuple[int, list[UUID]]:
    """`erase_events`, and the ids of the events' deliveries (whose held states a cache must drop)."""
    wanted = list(dict.fromkeys(event_ids))
    if not wanted:
        return 0, []
    erased = 0
    with db.transaction(commit=True) as c:
        rows = _stored(c, db, [event_id.hex for event_id in wanted])
        delivery_ids: list[str] = []
        for stored in rows:
            domain_event = mapper.to_domain_event(stored)
            data = domain_event.__dict__
            if "webhook_ids" in data:  # Event.FannedOut: the deliveries it owes
                delivery_ids.extend(ids.delivery_id(_uuid(stored), w).hex for w in data["webhook_ids"])
            elif "payload" in data and not data.get("erased"):  # Event.Published
                data["payload"] = None
                _mark(c, db, mapper, stored, domain_event, at)
                erased += 1
        for stored in _stored(c, db, delivery_ids):
            domain_event = mapper.to_domain_event(stored)
            attempt = domain_event.__dict__.get("attempt")
            if isinstance(attempt, dict) and not attempt.get("erased"):
                domain_event.__dict__["attempt"] = {
                    **attempt,
                    "response_body": None,
                    "erased": True,
                    "erased_at": at,
                }
                _mark(c, db, mapper, stored, domain_event, at)
    return erased, [UUID(hex=i) for i in delivery_ids]


def _stored(c: Cursor, db: Database, wanted: Sequence[str]) -> list[StoredEvent]:
    if not wanted:
        return []
    c.execute(
        f"SELECT originator_id, originator_version, topic, state FROM {db.events}"
        f" WHERE originator_id IN ({','.join('?' * len(wanted))})"
        " ORDER BY originator_id, originator_version",
        list(wanted),
    )
    return [
        StoredEvent(row[0] if isinstance(row[0], UUID) else UUID(row[0]), row[1], row[2], bytes(row[3]))
        for row in c.fetchall()
    ]


def _mark(
    c: Cursor, db: Database, mapper: Mapper[UUID], stored: StoredEvent, domain_event: Any, at: datetime
) -> None:
    domain_event.__dict__["erased"] = True
    domain_event.__dict__["erased_at"] = at
    state = mapper.to_stored_event(domain_event).state
    c.execute(
        f"UPDATE {db.events} SET state = ? WHERE originator_id = ? AND originator_version = ?",
        (state, _uuid(stored).hex, stored.originator_version),
    )


def _uuid(stored: StoredEvent) -> UUID:
    return stored.originator_id if isinstance(stored.originator_id, UUID) else UUID(stored.originator_id)
