"""`Webhook.health` at the edge: its GraphQL types, and a list's health loaded with the list.

A page of webhooks that selects `health` gets every webhook's health in the same call to the store as
the page (one query more, in the same worker thread), handed to each `Webhook` built: its `health`
field is then resolved synchronously. A resolver awaited for each webhook (a `DataLoader`) costs
graphql-core an awaitable per webhook and per field under it, several times the cost of the fields
themselves for a list of 1 000; any other `Webhook` (one webhook, a mutation's answer) still loads its
health on demand, through the request's `DataLoader`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from domain.application import Hookline
from domain.health import WebhookHealth as DomainWebhookHealth
from domain.roles import Principal
from domain.views import Page
from domain.webhooks import Webhook as DomainWebhook

HEALTH_OF_NODES = ("edges", "node", "health")  # where a connection's selection asks for its nodes' health


@strawberry.type
class StatusCodeCount:
    status_code: int | None  # null: no response (timeout, refused)
    count: int


@strawberry.type
class WebhookHealth:
    """Over the last 24 hours, counted in attempts (the streak and its times: whenever they were)."""

    attempts: int
    failures: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    status_codes: list[StatusCodeCount]

    @classmethod
    def from_domain(cls, health: DomainWebhookHealth) -> WebhookHealth:
        return cls(
            attempts=health.attempts,
            failures=health.failures,
            success_rate=health.success_rate,
            latency_p50_ms=health.latency_p50_ms,
            latency_p95_ms=health.latency_p95_ms,
            consecutive_failures=health.consecutive_failures,
            last_success_at=health.last_success_at,
            last_failure_at=health.last_failure_at,
            status_codes=[StatusCodeCount(status_code=code, count=n) for code, n in health.status_codes],
        )


def selects(selections: Sequence[Selection], path: Sequence[str]) -> bool:
    """Whether `selections` select the field at `path` (field names, not aliases), fragments included."""
    if not path:
        return True
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == path[0] and selects(selection.selections, path[1:]):
                return True
        elif selects(selection.selections, path):  # a fragment: its fields are the parent's
            return True
    return False


def webhooks_with_health(
    app: Hookline,
    principal: Principal,
    *,
    first: int,
    after: str | None,
    active: bool | None,
    event_type: str | None,
    health: bool,
) -> tuple[Page[DomainWebhook], dict[UUID, DomainWebhookHealth]]:
    """A page of the caller's webhooks and, when `health`, the health of each (else none)."""
    page = app.webhooks(principal, first=first, after=after, active=active, event_type=event_type)
    if not health:
        return page, {}
    return page, app.webhook_health(principal, [webhook.id for _, webhook in page.items])
