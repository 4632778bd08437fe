"""The read models' queries: lists and lookups answered from the projected tables."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.audit import Verification
from domain.credentials import Credential
from domain.deliveries import Delivery, DeliveryUpdate
from domain.event_types import EventType
from domain.health import WebhookHealth
from domain.organizations import ApiKey
from domain.views import Page
from domain.webhooks import SavedWebhook, Webhook
from store.audit import AuditTrail
from store.erasure import erase_events_and_deliveries
from store.health import read_health
from store.sql import Database, at_moment
from store.states import States
from store.verification import ChainVerifier
from store.work import WorkQueries

A = TypeVar("A", bound=Aggregate)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor stands for; a cursor that is not ours reads as the end of the list."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind == "seq":
            return int(value)
    except ValueError:
        pass
    return 0


class ReadModelQueries(WorkQueries):
    """Lists and lookups over the tables that `store.readmodel.ReadModel` keeps: given the database, the
    states its writer holds, the audit trail and its verifier, and how far the tables have got."""

    def __init__(
        self,
        db: Database,
        states: States,
        audit: AuditTrail,
        verifier: ChainVerifier,
        position: Callable[[], int],
    ) -> None:
        self.db = db
        self.reader = states
        self.audit = audit
        self.verifier = verifier
        self.position = position

    def held(self, aggregate_id: UUID) -> Aggregate | None:
        """A projected state if this process holds it in memory (no I/O, so callable anywhere)."""
        return self.reader.held(aggregate_id)

    def states(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """Projected states by id, as they stand now; not to be changed in place."""
        return self.reader.states(ids)

    def stored(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """Aggregates as the event store has them now (not projected: never behind), read at once."""
        return self.reader.stored(ids)

    def webhook(self, organization_id: UUID, webhook_id: UUID) -> Webhook | None:
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT id FROM hl_webhooks WHERE id = ? AND organization_id = ? AND deleted = 0",
                (webhook_id.hex, organization_id.hex),
            )
            row = c.fetchone()
            found = self.reader.projected(c, [row[0]]) if row else {}
        webhook = next(iter(found.values()), None)
        return webhook if isinstance(webhook, Webhook) else None

    def webhooks(
        self,
        organization_id: UUID,
        *,
        first: int,
        after: str | None,
        active: bool | None,
        event_type: str | None,
    ) -> Page[Webhook]:
        where = ["w.organization_id = ?", "w.deleted = 0"]
        params: list[Any] = [organization_id.hex]
        if active is not None:
            where.append("w.active = ?")
            params.append(int(active))
        if event_type is not None:
            where.append(
                "EXISTS (SELECT 1 FROM hl_webhook_event_types t"
                " WHERE t.webhook_id = w.id AND t.event_type = ?)"
            )
            params.append(event_type)
        return self._page("hl_webhooks w", "w", where, params, first, after, Webhook)

    def duplicate_of(self, organization_id: UUID, fingerprint: str, exclude: UUID | None) -> UUID | None:
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT id FROM hl_webhooks WHERE organization_id = ? AND fingerprint = ?"
                " AND deleted = 0 AND id != ? LIMIT 1",
                (organization_id.hex, fingerprint, exclude.hex if exclude else ""),
            )
            row = c.fetchone()
        return UUID(row[0]) if row else None

    def subscribed_webhooks(self, organization_id: UUID, event_type: str) -> list[SavedWebhook]:
        """The fan-out index: active webhooks of an organisation subscribed to a type, each as saved
        at the version the tables have (decoded once per version, kept in the read model's cache)."""
        cache = self.reader.cache
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT w.id, s.version FROM hl_webhooks w"
                " JOIN hl_webhook_event_types t ON t.webhook_id = w.id JOIN hl_states s ON s.id = w.id"
                " WHERE t.organization_id = ? AND t.event_type = ? AND w.active = 1 AND w.deleted = 0",
                (organization_id.hex, event_type),
            )
            rows = [(UUID(row[0]), row[1]) for row in c.fetchall()]
            found = {key: saved for key in rows if (saved := cache.saved_at(*key)) is not None}
            missing = [webhook_id.hex for webhook_id, version in rows if (webhook_id, version) not in found]
            for webhook in self.reader.projected(c, missing).values():
                if isinstance(webhook, Webhook):
                    cache.keep(webhook)
                    found[(webhook.id, webhook.version)] = cache.saved(webhook)
        return [saved for key in rows if (saved := found.get(key)) is not None]

    def saved(self, webhook: Webhook) -> SavedWebhook:
        return self.reader.cache.saved(webhook)

    def webhook_health(
        self, organization_id: UUID, webhook_ids: Sequence[UUID], now: datetime
    ) -> dict[UUID, WebhookHealth]:
        return read_health(self.db, organization_id, webhook_ids, now)

    def erase_events(self, event_ids: Sequence[UUID], at: datetime) -> int:
        """`store.erasure`, and the states this process holds of the events and their deliveries
        dropped (other processes drop theirs when they read `Event.Erased`)."""
        erased, deliveries = erase_events_and_deliveries(self.db, self.reader.mapper, event_ids, at)
        self.reader.cache.drop([*event_ids, *deliveries])
        return erased

    def delivery(self, organization_id: UUID, delivery_id: UUID) -> Delivery | None:
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT id FROM hl_deliveries WHERE id = ? AND organization_id = ?",
                (delivery_id.hex, organization_id.hex),
            )
            row = c.fetchone()
            found = self.reader.projected(c, [row[0]]) if row else {}
        delivery = next(iter(found.values()), None)
        return delivery if isinstance(delivery, Delivery) else None

    def deliveries(
        self,
        organization_id: UUID,
        *,
        webhook_id: UUID | None,
        event_id: UUID | None,
        status: str | None,
        first: int,
        after: str | None,
    ) -> Page[Delivery]:
        where = ["d.organization_id = ?"]
        params: list[Any] = [organization_id.hex]
        for column, value in (("webhook_id", webhook_id), ("event_id", event_id)):
            if value is not None:
                where.append(f"d.{column} = ?")
                params.append(value.hex)
        if status is not None:
            where.append("d.status = ?")
            params.append(status)
        return self._page("hl_deliveries d", "d", where, params, first, after, Delivery)

    def _page(
        self,
        table: str,
        alias: str,
        where: list[str],
        params: list[Any],
        first: int,
        after: str | None,
        kind: type[Any],
    ) -> Page[Any]:
        condition = " AND ".join(where)
        position = decode_cursor(after)
        with self.db.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM {table} WHERE {condition}", params)
            total = c.fetchone()[0]
            paged = f"{condition} AND {alias}.seq < ?" if position is not None else condition
            c.execute(
                f"SELECT {alias}.id, {alias}.seq FROM {table} WHERE {paged}"
                f" ORDER BY {alias}.seq DESC LIMIT ?",
                [*params, *([position] if position is not None else []), first + 1],
            )
            rows = c.fetchall()
            states = self.reader.projected(c, [row[0] for row in rows[:first]])
        items = [
            (encode_cursor(row[1]), states[row[0]])
            for row in rows[:first]
            if isinstance(states.get(row[0]), kind)
        ]
        return Page(items=items, total=total, has_next=len(rows) > first)

    def credentials(self, organization_id: UUID) -> list[Credential]:
        return self._all("hl_credentials", organization_id, "seq", Credential)

    def api_keys(self, organization_id: UUID | None) -> list[ApiKey]:
        with self.db.transaction(commit=False) as c:
            if organization_id is None:
                c.execute("SELECT id FROM hl_api_keys ORDER BY seq")
            else:
                c.execute(
                    "SELECT id FROM hl_api_keys WHERE organization_id = ? ORDER BY seq",
                    (organization_id.hex,),
                )
            ids = [row[0] for row in c.fetchall()]
            states = self.reader.projected(c, ids)
        return [state for i in ids if isinstance(state := states.get(i), ApiKey)]

    def event_types(self, organization_id: UUID) -> list[EventType]:
        return self._all("hl_event_types", organization_id, "name", EventType)

    def _all(self, table: str, organization_id: UUID, order: str, kind: type[A]) -> list[A]:
        with self.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT id FROM {table} WHERE organization_id = ? ORDER BY {order}", (organization_id.hex,)
            )
            ids = [row[0] for row in c.fetchall()]
            states = self.reader.projected(c, ids)
        return [state for i in ids if isinstance(state := states.get(i), kind)]

    def delivery_updates(
        self, organization_id: UUID | None, webhook_id: UUID | None, after: int, limit: int
    ) -> list[DeliveryUpdate]:
        """Updates after a position, oldest first; of one organisation (and webhook), or of all."""
        where = "position > ?"
        params: list[Any] = [after]
        if organization_id is not None:
            where += " AND organization_id = ?"
            params.append(organization_id.hex)
        if webhook_id is not None:
            where += " AND webhook_id = ?"
            params.append(webhook_id.hex)
        with self.db.transaction(commit=False) as c:
            c.execute(
                "SELECT position, organization_id, delivery_id, webhook_id, event_id, status, attempt,"
                f" status_code, at FROM hl_delivery_updates WHERE {where} ORDER BY position LIMIT ?",
                [*params, limit],
            )
            rows = c.fetchall()
        return [
            DeliveryUpdate(
                position=row[0],
                organization_id=UUID(row[1]),
                delivery_id=UUID(row[2]),
                webhook_id=UUID(row[3]),
                event_id=UUID(row[4]),
                status=row[5],
                attempt=row[6],
                status_code=row[7],
                at=at_moment(row[8]),
            )
            for row in rows
        ]

    def audit_page(
        self, organization_id: UUID, aggregate_id: UUID | None, first: int, after: str | None
    ) -> Page[dict[str, Any]]:
        with self.db.transaction(commit=False) as c:
            entries, total, more = self.audit.page(
                c, organization_id, aggregate_id, first, decode_cursor(after)
            )
        return Page(items=[(encode_cursor(e["position"]), e) for e in entries], total=total, has_next=more)

    def verify_audit(self, organization_id: UUID) -> Verification:
        """Recomputes the chain from the stored events up to where the trail has got: what was
        recorded since is checked by the next verification, not reported as tampering."""
        return self.verifier.verify(organization_id, self.position())

    def export_audit(self, organization_id: UUID | None) -> Iterator[dict[str, Any]]:
        return self.audit.export(self._reading, organization_id)

    def _reading(self) -> Any:
        return self.db.transaction(commit=False)
