"""Aggregates' states as the read model holds them (memory, then `hl_states`) and as the event store
holds them now: what the read model's writer applies each event to, and what its queries answer with.

Events' and deliveries' states are not kept in `hl_states` (`UNKEPT`): they are read from their own
few stored events, since a snapshot would store an event's payload, or a delivery's attempts so far,
once more for each of their events.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import suppress
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


def topics_of(*aggregates: type[Aggregate]) -> tuple[str, ...]:
    """The topics of the events of some aggregate types."""
    return tuple(
        get_topic(kind)
        for aggregate in aggregates
        for kind in vars(aggregate).values()
        if isinstance(kind, type) and issubclass(kind, aggregate.Event)
    )


UNKEPT_TOPICS = topics_of(*UNKEPT)
EVENT_TOPICS = topics_of(Event)


class StateCache:
    """The read model's one cache: projected states, each under its id at its version (a lookup names
    both), least recently used out first; with a webhook's state, its spec, compiled filters and
    template (`SavedWebhook`). Only the writer puts states at their latest version; readers keep the
    webhooks they decode, so that their saved data stays while they are in use."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._states: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._saved: dict[UUID, SavedWebhook] = {}  # of held webhooks, each of some version of theirs

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        return self._states.get(aggregate_id)

    def at(self, aggregate_id: UUID, version: int) -> Aggregate | None:
        """The state at exactly that version (for the writer: what its next event applies to)."""
        state = self._states.get(aggregate_id)
        if state is None or state.version != version:
            return None
        self._states.move_to_end(aggregate_id)
        return state

    def put(self, aggregate: Aggregate) -> None:
        """The writer's state of an aggregate after an event."""
        states = self._states
        states[aggregate.id] = aggregate
        states.move_to_end(aggregate.id)
        if len(states) > self.size:
            self._evict()

    def keep(self, webhook: Webhook) -> None:
        """A webhook a reader decoded from the tables, unless a state of it is held already (the
        writer's is as new, or newer)."""
        self._states.setdefault(webhook.id, webhook)
        if len(self._states) > self.size:
            self._evict()

    def saved(self, webhook: Webhook) -> SavedWebhook:
        """A saved webhook's `SavedWebhook`, built once per version and kept while its state is."""
        states = self._states
        saved = self._saved.get(webhook.id)
        if saved is None or saved.version != webhook.version:
            saved = SavedWebhook.of(webhook)
            if webhook.id in states:
                self._saved[webhook.id] = saved
        if webhook.id in states:
            with suppress(KeyError):  # (evicted by the writer meanwhile)
                states.move_to_end(webhook.id)
        return saved

    def saved_at(self, webhook_id: UUID, version: int) -> SavedWebhook | None:
        """A webhook's `SavedWebhook` at a version, if its state at that version is held."""
        state = self._states.get(webhook_id)
        return self.saved(state) if isinstance(state, Webhook) and state.version == version else None

    def _evict(self) -> None:
        while len(self._states) > self.size:
            with suppress(KeyError):  # (emptied by a clear meanwhile)
                aggregate_id, _ = self._states.popitem(last=False)
                self._saved.pop(aggregate_id, None)

    def drop(self, aggregate_ids: Iterable[UUID]) -> None:
        """Forgets some states (erased ones: read again from the store when asked for)."""
        for aggregate_id in aggregate_ids:
            self._states.pop(aggregate_id, None)
            self._saved.pop(aggregate_id, None)

    def clear(self) -> None:
        self._states.clear()
        self._saved.clear()


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
                for key, state in self.projected(c, missing).items():
                    found[UUID(key)] = state
                    if isinstance(state, Webhook):  # its spec and filters stay for the next batch
                        self.cache.keep(state)
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
            owed = [i for i in missing if i not in found]
            if owed:
                found.update(self.owed(c, owed))
        return found

    def owed(self, c: Cursor, wanted: Sequence[str]) -> dict[str, Delivery]:
        """Deliveries (by id, hex) that an event's fan-out owes and nothing about is stored yet:
        PENDING, built from their events (`Delivery.owed`)."""
        c.execute(
            f"SELECT id, event_id, webhook_id FROM hl_deliveries WHERE id IN ({','.join('?' * len(wanted))})",
            wanted,
        )
        rows = c.fetchall()
        if not rows:
            return {}
        events = self.stored_in(c, list({row[1] for row in rows}), topics=EVENT_TOPICS)
        found: dict[str, Delivery] = {}
        for delivery_id, event_id, webhook_id in rows:
            event = events.get(UUID(event_id))
            if isinstance(event, Event) and UUID(webhook_id) in event.webhook_ids:
                found[delivery_id] = Delivery.owed(event, UUID(webhook_id), UUID(delivery_id))
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
