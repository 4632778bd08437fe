"""GraphQL types of the contract, built from domain objects at the edge (aggregates never leak)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from domain.audit import Verification
from domain.built_in_types import BUILT_IN
from domain.catalogue import EventTypeSpec
from domain.credentials import Credential as DomainCredential
from domain.credentials import CredentialKind
from domain.deliveries import Attempt as DomainAttempt
from domain.deliveries import Delivery as DomainDelivery
from domain.deliveries import DeliveryStatus
from domain.deliveries import DeliveryUpdate as DomainDeliveryUpdate
from domain.filters import FilterOperator
from domain.health import WebhookHealth as DomainWebhookHealth
from domain.masking import masked_header_value, masked_url
from domain.roles import Permission, Principal
from domain.views import Page
from domain.webhooks import HttpMethod
from domain.webhooks import Webhook as DomainWebhook
from gateway.context import Info
from gateway.health import WebhookHealth

# The schema's enums are the domain's own, under their names and with their values.
strawberry.enum(HttpMethod)
strawberry.enum(FilterOperator)
strawberry.enum(DeliveryStatus)
strawberry.enum(CredentialKind)

T = TypeVar("T")
N = TypeVar("N")


@strawberry.type
class Header:
    name: str
    value: str


@strawberry.type
class Condition:
    field: str
    operator: FilterOperator
    values: list[JSON] | None


@strawberry.type
class FilterGroup:
    conditions: list[Condition]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    """A page of a list; `Connection[Webhook]` is named `WebhookConnection` in the schema."""

    total_count: int
    edges: list[Edge[N]]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[T], node: Callable[[T], N]) -> Connection[N]:
        edges = [Edge(cursor=cursor, node=node(item)) for cursor, item in page.items]
        end_cursor = edges[-1].cursor if edges else None
        page_info = PageInfo(has_next_page=page.has_next, end_cursor=end_cursor)
        return cls(total_count=page.total, edges=edges, page_info=page_info)


@strawberry.type
class Webhook:
    id: strawberry.ID
    name: str
    description: str | None
    event_types: list[str]
    target_url: str
    method: HttpMethod
    headers: list[Header]
    credential_id: strawberry.ID | None
    payload_template: str | None
    filters: list[FilterGroup]
    active: bool
    rate_limit_per_second: int | None
    ordered: bool
    disabled_reason: str | None
    signing_secret: str | None  # admins only, null for other roles
    version: int
    created_at: datetime
    updated_at: datetime

    loaded_health: strawberry.Private[DomainWebhookHealth | None] = None  # loaded with its list

    @strawberry.field
    def health(self, info: Info) -> WebhookHealth:
        """Resolved at once when loaded with the list (see `gateway.health`), else a coroutine, which
        graphql-core awaits as it awaits whatever a resolver returns that is awaitable."""
        if self.loaded_health is not None:
            return WebhookHealth.from_domain(self.loaded_health)
        return cast(WebhookHealth, self._load_health(info))

    async def _load_health(self, info: Info) -> WebhookHealth:
        return WebhookHealth.from_domain(await info.context.webhook_health(UUID(self.id)))

    @classmethod
    def from_domain(
        cls, webhook: DomainWebhook, principal: Principal, health: DomainWebhookHealth | None = None
    ) -> Webhook:
        spec = webhook.spec
        as_set = principal.may(Permission.READ_WEBHOOK_SECRETS)
        return cls(
            id=strawberry.ID(str(webhook.id)),
            name=spec.name,
            description=spec.description,
            event_types=list(spec.event_types),
            target_url=spec.target_url if as_set else masked_url(spec.target_url),
            method=HttpMethod(spec.method),
            headers=[
                Header(name=h.name, value=h.value if as_set else masked_header_value(h.name, h.value))
                for h in spec.headers
            ],
            credential_id=strawberry.ID(str(spec.credential_id)) if spec.credential_id else None,
            payload_template=spec.payload_template,
            filters=[
                FilterGroup(
                    conditions=[
                        Condition(field=c.field, operator=FilterOperator(c.operator), values=c.values)
                        for c in group
                    ]
                )
                for group in spec.filters
            ],
            active=webhook.active,
            rate_limit_per_second=spec.rate_limit_per_second,
            ordered=spec.ordered,
            disabled_reason=webhook.disabled_reason,
            signing_secret=(
                webhook.signing_secret if principal.may(Permission.READ_SIGNING_SECRETS) else None
            ),
            version=webhook.version,
            created_at=webhook.created_on,
            updated_at=webhook.modified_on,
            loaded_health=health,
        )


@strawberry.type
class Attempt:
    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None  # null when erased
    erased: bool  # its response body was erased (eraseEvent, or the retention policy's payloads window)
    erased_at: datetime | None  # when (null unless erased)

    @classmethod
    def from_domain(cls, attempt: DomainAttempt) -> Attempt:
        return cls(
            number=attempt.number,
            started_at=attempt.started_at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=attempt.error,
            response_body=attempt.response_body,
            erased=attempt.erased,
            erased_at=attempt.erased_at,
        )


@strawberry.type
class Delivery:
    id: strawberry.ID
    webhook_id: strawberry.ID
    event_id: strawberry.ID
    event_type: str
    status: DeliveryStatus
    attempts: list[Attempt]
    next_attempt_at: datetime | None
    created_at: datetime

    @classmethod
    def from_domain(cls, delivery: DomainDelivery) -> Delivery:
        return cls(
            id=strawberry.ID(str(delivery.id)),
            webhook_id=strawberry.ID(str(delivery.webhook_id)),
            event_id=strawberry.ID(str(delivery.event_id)),
            event_type=delivery.event_type,
            status=DeliveryStatus(delivery.status),
            attempts=[Attempt.from_domain(a) for a in delivery.attempts],
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_on,
        )


@strawberry.type
class PublishedEvent:
    event_id: strawberry.ID
    duplicate: bool


@strawberry.type
class Credential:
    id: strawberry.ID
    name: str
    kind: CredentialKind
    masked_secret: str  # never the secret itself

    @classmethod
    def from_domain(cls, credential: DomainCredential) -> Credential:
        return cls(
            id=strawberry.ID(str(credential.id)),
            name=credential.name,
            kind=CredentialKind(credential.kind),
            masked_secret=credential.masked_secret,
        )


@strawberry.type
class EventType:
    name: str
    description: str | None
    variables: list[str]
    sample_payload: JSON | None
    built_in: bool = strawberry.field(
        description="Part of Hookline's catalogue (true) or defined by the organisation (false)."
    )

    @classmethod
    def from_domain(cls, spec: EventTypeSpec) -> EventType:
        return cls(
            name=spec.name,
            description=spec.description,
            variables=list(spec.variables),
            sample_payload=cast(JSON, spec.sample_payload),
            built_in=spec.name in BUILT_IN,  # organisations cannot define a built-in name
        )


@strawberry.type
class TestResult:
    success: bool  # a 2xx came back
    status_code: int | None
    duration_ms: float | None
    response_body: str | None
    errors: list[str]  # configuration problems found before sending, or the transport error
    request_body: str | None  # what was sent

    @classmethod
    def refused(cls, errors: list[str]) -> TestResult:
        return cls(
            success=False,
            status_code=None,
            duration_ms=None,
            response_body=None,
            errors=errors,
            request_body=None,
        )

    @classmethod
    def from_attempt(cls, attempt: DomainAttempt, body: bytes | None) -> TestResult:
        return cls(
            success=attempt.succeeded,
            status_code=attempt.status_code,
            duration_ms=attempt.duration_ms,
            response_body=attempt.response_body,
            errors=[attempt.error] if attempt.error and attempt.status_code is None else [],
            request_body=body.decode("utf-8", errors="replace") if body is not None else None,
        )


@strawberry.type
class AuditRecord:
    position: int  # the global position in the store, strictly increasing
    organization_id: strawberry.ID
    aggregate_id: strawberry.ID
    aggregate_type: str
    version: int
    event_type: str
    recorded_at: datetime
    actor: str | None  # the key's id or "system"
    data: JSON | None  # secrets redacted; null when erased
    data_hash: str  # hex SHA-256 of data's canonical JSON, kept when data is erased
    erased: bool
    hash: str  # hex SHA-256 over previousHash and the record's chained form (without data)
    previous_hash: str

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> AuditRecord:
        return cls(
            position=entry["position"],
            organization_id=strawberry.ID(entry["organizationId"]),
            aggregate_id=strawberry.ID(entry["aggregateId"]),
            aggregate_type=entry["aggregateType"],
            version=entry["version"],
            event_type=entry["eventType"],
            recorded_at=datetime.fromisoformat(entry["recordedAt"]),
            actor=entry["actor"],
            data=entry["data"],
            data_hash=entry["dataHash"],
            erased=entry["erased"],
            hash=entry["hash"],
            previous_hash=entry["previousHash"],
        )


@strawberry.type
class AuditVerification:
    valid: bool
    checked: int
    first_invalid_position: int | None

    @classmethod
    def from_domain(cls, verification: Verification) -> AuditVerification:
        return cls(
            valid=verification.valid,
            checked=verification.checked,
            first_invalid_position=verification.first_invalid,
        )


@strawberry.type
class DeliveryUpdate:
    cursor: str  # pass back as `after` to resume with nothing lost
    delivery_id: strawberry.ID
    webhook_id: strawberry.ID
    event_id: strawberry.ID
    status: DeliveryStatus
    attempt: int | None
    status_code: int | None
    at: datetime

    @classmethod
    def from_domain(cls, update: DomainDeliveryUpdate) -> DeliveryUpdate:
        return cls(
            cursor=str(update.position),
            delivery_id=strawberry.ID(str(update.delivery_id)),
            webhook_id=strawberry.ID(str(update.webhook_id)),
            event_id=strawberry.ID(str(update.event_id)),
            status=DeliveryStatus(update.status),
            attempt=update.attempt,
            status_code=update.status_code,
            at=update.at,
        )
