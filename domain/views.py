"""The read side as the domain sees it: a port that the store's projections implement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from domain.audit import Verification
from domain.credentials import Credential
from domain.deliveries import Delivery
from domain.event_types import EventType
from domain.health import WebhookHealth
from domain.organizations import ApiKey
from domain.webhooks import SavedWebhook, Webhook

T = TypeVar("T")

MAX_PAGE = 500


@dataclass
class Page(Generic[T]):
    """One page of a list, newest first, with the cursor of each item."""

    items: list[tuple[str, T]] = field(default_factory=list)
    total: int = 0
    has_next: bool = False


class Following(Protocol):
    """The read model's writer, as its readers see it."""

    def catch_up(self) -> None:
        """Apply everything recorded so far (read-your-writes for the caller that just wrote)."""


class AggregateStates(Protocol):
    """What loading aggregates needs (`HooklineBase._fresh`, `_recent`)."""

    def states(self, ids: Iterable[UUID]) -> Mapping[UUID, object]:
        """Projected states by id, as they stand now (possibly a moment behind the store); not to be
        changed in place."""

    def stored(self, ids: Iterable[UUID]) -> Mapping[UUID, object]:
        """Aggregates as the event store has them now (not projected: never behind), read at once."""

    def held(self, aggregate_id: UUID) -> object | None:
        """A projected state if this process holds it in memory (no I/O, so callable anywhere)."""


class ConfigurationViews(Protocol):
    """What configuring webhooks needs beyond loading them."""

    def duplicate_of(self, organization_id: UUID, fingerprint: str, exclude: UUID | None) -> UUID | None: ...


class DeliveryViews(Protocol):
    """What the delivery service needs: fan-out's index, ordered webhooks' heads, recovery's lists."""

    def subscribed_webhooks(self, organization_id: UUID, event_type: str) -> list[SavedWebhook]:
        """The fan-out index: active webhooks of an organisation subscribed to a type."""

    def saved(self, webhook: Webhook) -> SavedWebhook:
        """A saved webhook's spec, filters and template, built once per version (no I/O)."""

    def ordered_head(self, webhook_id: UUID) -> tuple[UUID, datetime | None] | None:
        """An ordered webhook's next delivery (and its due time), if it may go now."""

    def owed_by(self, delivery_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        """The event of each delivery the tables know of (owed by its fan-out, or stored)."""

    def failed_deliveries(self, webhook_id: UUID, since: datetime) -> list[UUID]: ...

    def erase_events(self, event_ids: Sequence[UUID], at: datetime) -> int:
        """Erases the events' payloads and their deliveries' bodies in the store (`store.erasure`)
        and in what the read model holds; how many were erased now."""

    def events_between(
        self,
        organization_id: UUID,
        types: Sequence[str],
        start: datetime,
        end: datetime | None,
        after: int,
        limit: int,
    ) -> list[tuple[UUID, int]]: ...

    def existing_deliveries(self, delivery_ids: Sequence[UUID]) -> set[UUID]: ...

    def failing_webhooks(self, since_before: datetime) -> list[UUID]: ...


class Listings(Protocol):
    """What the gateway's queries read, through the application (which checks the caller first)."""

    def webhook(self, organization_id: UUID, webhook_id: UUID) -> Webhook | None: ...

    def webhooks(
        self,
        organization_id: UUID,
        *,
        first: int,
        after: str | None,
        active: bool | None,
        event_type: str | None,
    ) -> Page[Webhook]: ...

    def webhook_health(
        self, organization_id: UUID, webhook_ids: Sequence[UUID], now: datetime
    ) -> dict[UUID, WebhookHealth]:
        """The health of the day that ends `now` of those webhooks that were ever attempted."""

    def delivery(self, organization_id: UUID, delivery_id: UUID) -> Delivery | None: ...

    def deliveries(
        self,
        organization_id: UUID,
        *,
        webhook_id: UUID | None,
        event_id: UUID | None,
        status: str | None,
        first: int,
        after: str | None,
    ) -> Page[Delivery]: ...

    def credentials(self, organization_id: UUID) -> list[Credential]: ...

    def event_types(self, organization_id: UUID) -> list[EventType]: ...

    def api_keys(self, organization_id: UUID | None) -> list[ApiKey]: ...

    def audit_page(
        self, organization_id: UUID, aggregate_id: UUID | None, first: int, after: str | None
    ) -> Page[dict[str, Any]]:
        """Audit records of an organisation, oldest first, each with `hash` and `previousHash`."""

    def verify_audit(self, organization_id: UUID) -> Verification: ...


class Views(AggregateStates, ConfigurationViews, DeliveryViews, Listings, Protocol):
    """The read side the application is given: lists and lookups answered from projections of the
    store, never by loading aggregates one by one."""


class SweepViews(Protocol):
    """What the dispatcher and the sweeper read to queue what the store says is due."""

    def states(self, ids: Iterable[UUID]) -> Mapping[UUID, object]: ...

    def saved(self, webhook: Webhook) -> SavedWebhook: ...

    def ordered_head(self, webhook_id: UUID) -> tuple[UUID, datetime | None] | None: ...

    def ordered_webhooks_with_work(self) -> list[UUID]:
        """Ordered webhooks that have unfinished deliveries."""

    def unfinished_deliveries(self, due_before: datetime | None = None) -> list[tuple[UUID, datetime | None]]:
        """Pending and retrying deliveries of webhooks that are not ordered, with their due times."""

    def events_not_fanned_out(self) -> list[UUID]: ...
