"""Aggregates' states as the read model holds them (memory, then `hl_states`) and as the event store
holds them now: what the read model's writer applies each event to, and what its queries answer with.

Events' and deliveries' states are not kept in `hl_states` (`UNKEPT`): they are read from their own
few stored events, since a snapshot would store an event's payload, or a delivery's attempts so far,
once more for each of their events.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.deliveries import Delivery
from domain.events import Event
from domain.webhooks import SavedWebhook, Webhook
from store.sql import Cursor, Database

CACHE_SIZE = 20_000

UNKEPT = (Event, Delivery)
UNKEPT_TOPICS = tuple(
    get_topic(kind)
    for aggregate in UNKEPT
    for kind in vars(aggregate).values()
    if isinstance(kind, type) and issubclass(kind, aggregate.Event)
)


class StateCache:
    """The read model's one cache: projected states, each under its id and version, least recently
    used out first; with a webhook's, its spec, compiled filters and template (`SavedWebhook`), which
    are also kept for a version read from the tables. Only the writer puts states: a state held here
    at an aggregate's latest version is what the tables have, or newer (applied, not yet committed)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        # (id, version) → the state at that version, or None where only a webhook's saved data is kept.
        self._held: OrderedDict[tuple[UUID, int], Aggregate | None] = OrderedDict()
        self._saved: dict[tuple[UUID, int], SavedWebhook] = {}
        self._latest: dict[UUID, int] = {}  # the version of each aggregate's state the writer put last
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        """An aggregate's state at its latest version held."""
        version = self._latest.get(aggregate_id)
        return None if version is None else self._held.get((aggregate_id, version))

    def at(self, aggregate_id: UUID, version: int) -> Aggregate | None:
        """The state at exactly that version (for the writer: what its next event applies to)."""
        key = (aggregate_id, version)
        with self._lock:
            state = self._held.get(key)
            if state is not None:
                self._held.move_to_end(key)
            return state

    def put(self, aggregate: Aggregate) -> None:
        """The writer's state after an event. Moved on in place, the state is no longer the one of
        the version before: that entry goes (a webhook's is a copy, so its entry stays true)."""
        aggregate_id, version = aggregate.id, aggregate.version
        key = (aggregate_id, version)
        with self._lock:
            before = (aggregate_id, version - 1)
            if self._held.get(before) is aggregate:
                del self._held[before]
                self._saved.pop(before, None)
            self._held[key] = aggregate
            self._held.move_to_end(key)
            self._latest[aggregate_id] = version
            self._evict()

    def saved(self, webhook: Webhook) -> SavedWebhook:
        """A saved webhook's `SavedWebhook`, built once per version and kept."""
        key = (webhook.id, webhook.version)
        with self._lock:
            saved = self._saved.get(key)
            if saved is not None:
                self._held.move_to_end(key)
                return saved
        saved = SavedWebhook.of(webhook)
        with self._lock:
            saved = self._saved.setdefault(key, saved)
            self._held.setdefault(key, None)
            self._held.move_to_end(key)
            self._evict()
        return saved

    def saved_at(self, webhook_id: UUID, version: int) -> SavedWebhook | None:
        """A webhook's `SavedWebhook` at a version, if kept or its state is held; else None."""
        key = (webhook_id, version)
        saved = self._saved.get(key)
        if saved is None:
            state = self._held.get(key)
            return self.saved(state) if isinstance(state, Webhook) else None
        with self._lock:
            if key in self._held:
                self._held.move_to_end(key)
        return saved

    def _evict(self) -> None:
        while len(self._held) > self.size:
            (aggregate_id, version), _ = self._held.popitem(last=False)
            self._saved.pop((aggregate_id, version), None)
            if self._latest.get(aggregate_id) == version:
                del self._latest[aggregate_id]

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
            self._saved.clear()
            self._latest.clear()


class States:
    """Reads states: held, projected (`hl_states`, or an unkept one's stored events), or stored."""

    def __init__(self, db: Database, mapper: Mapper[UUID], cache: StateCache) -> None:
        self.db = db
        self.mapper = mapper
        self.cache = cache

    def held(self, aggregate_id: UUID) -> Aggregate | None:
        return self.cache.get(aggregate_id)

    def states(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """The projected states of some aggregates as they stand now (held ones first)."""
        found: dict[UUID, Aggregate] = {}
        missing: list[str] = []
        for aggregate_id in ids:
            held = self.cache.get(aggregate_id)
            if held is not None:
                found[aggregate_id] = held
            else:
                missing.append(aggregate_id.hex)
        if missing:
            with self.db.transaction(commit=False) as c:
                found.update({UUID(k): v for k, v in self.projected(c, missing).items()})
        return found

    def stored(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """Aggregates as the event store has them now (never behind): all their stored events in one
        query (the library's repository reads each aggregate's on its own), applied in order."""
        wanted = [aggregate_id.hex for aggregate_id in dict.fromkeys(ids)]
        if not wanted:
            return {}
        with self.db.transaction(commit=False) as c:
            return self.stored_in(c, wanted)

    def projected(self, c: Cursor, ids: Iterable[str]) -> dict[str, Aggregate]:
        """Projected states by id (hex), in a transaction: from `hl_states`, or an unkept one's from
        its own stored events, as the store has them (an event just fanned out, or a delivery just
        attempted, shows so a moment before its index row does; lists take their ids from the index
        rows, so they list what those hold)."""
        wanted = list(ids)
        if not wanted:
            return {}
        c.execute(
            f"SELECT id, version, topic, state FROM hl_states WHERE id IN ({','.join('?' * len(wanted))})",
            wanted,
        )
        found = {row[0]: self.restore(UUID(row[0]), row[1:]) for row in c.fetchall()}
        missing = [i for i in wanted if i not in found]
        if missing:  # (the stored events of other aggregates are not even decrypted)
            unkept = self.stored_in(c, missing, topics=UNKEPT_TOPICS)
            found.update({i.hex: a for i, a in unkept.items() if isinstance(a, UNKEPT)})
        return found

    def previous(self, c: Cursor, aggregate_id: UUID, version: int) -> Aggregate | None:
        """The state an aggregate's event of `version` applies to: held, kept, or (an unkept one's)
        read from the store up to the version before."""
        aggregate = self.cache.at(aggregate_id, version - 1)
        if aggregate is not None:
            return aggregate
        c.execute("SELECT version, topic, state FROM hl_states WHERE id = ?", (aggregate_id.hex,))
        row = c.fetchone()
        if row:
            return self.restore(aggregate_id, row)
        return self.stored_in(c, [aggregate_id.hex], below=version).get(aggregate_id)

    def restore(self, aggregate_id: UUID, row: Sequence[Any]) -> Aggregate:
        snapshot = self.mapper.to_domain_event(
            StoredEvent(originator_id=aggregate_id, originator_version=row[0], topic=row[1], state=row[2])
        )
        return cast(Aggregate, cast(Snapshot, snapshot).mutate(None))

    def stored_in(
        self, c: Cursor, wanted: Sequence[str], below: int | None = None, topics: Sequence[str] = ()
    ) -> dict[UUID, Aggregate]:
        """`stored` in a transaction; with `below`, only the events of versions lower than that; with
        `topics`, only aggregates whose events have those topics."""
        older = " AND originator_version < ?" if below is not None else ""
        of_kind = f" AND topic IN ({','.join('?' * len(topics))})" if topics else ""
        c.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self.db.events}"
            f" WHERE originator_id IN ({','.join('?' * len(wanted))}){older}{of_kind}"
            " ORDER BY originator_id, originator_version",
            [*wanted, *([below] if below is not None else []), *topics],
        )
        rows = c.fetchall()
        found: dict[UUID, Aggregate] = {}
        to_domain_event = self.mapper.to_domain_event
        for originator_id, version, topic, state in rows:
            aggregate_id = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
            event = cast(
                Aggregate.Event, to_domain_event(StoredEvent(aggregate_id, version, topic, bytes(state)))
            )
            found[aggregate_id] = cast(Aggregate, event.mutate(found.get(aggregate_id)))
        return found
