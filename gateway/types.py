"""GraphQL types of the contract, built from domain objects at the edge (aggregates never leak)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from domain.audit import Verification
from domain.catalogue import BUILT_IN, EventTypeSpec
from domain.credentials import Credential as DomainCredential
from domain.deliveries import Attempt as DomainAttempt
from domain.deliveries import Delivery as DomainDelivery
from domain.deliveries import DeliveryUpdate as DomainDeliveryUpdate
from domain.masking import masked_header_value, masked_url
from domain.roles import Permission, Principal
from domain.views import Page
from domain.webhooks import Webhook as DomainWebhook


@strawberry.enum
class HttpMethod(enum.Enum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


@strawberry.enum
class FilterOperator(enum.Enum):
    EQ = "EQ"
    NEQ = "NEQ"
    IN = "IN"
    NOT_IN = "NOT_IN"
    CONTAINS = "CONTAINS"
    EXISTS = "EXISTS"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"
    MATCHES = "MATCHES"


@strawberry.enum
class DeliveryStatus(enum.Enum):
    PENDING = "PENDING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


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

    @classmethod
    def of(cls, has_next: bool, edges: Sequence[Any]) -> PageInfo:
        return cls(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None)


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

    @classmethod
    def from_domain(cls, webhook: DomainWebhook, principal: Principal) -> Webhook:
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
        )


@strawberry.type
class WebhookEdge:
    cursor: str
    node: Webhook


@strawberry.type
class WebhookConnection:
    total_count: int
    edges: list[WebhookEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainWebhook], principal: Principal) -> WebhookConnection:
        edges = [WebhookEdge(cursor=c, node=Webhook.from_domain(w, principal)) for c, w in page.items]
        return cls(
            total_count=page.total,
            edges=edges,
            page_info=PageInfo.of(page.has_next, edges),
        )


@strawberry.type
class Attempt:
    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None

    @classmethod
    def from_domain(cls, attempt: DomainAttempt) -> Attempt:
        return cls(
            number=attempt.number,
            started_at=attempt.started_at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=attempt.error,
            response_body=attempt.response_body,
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
class DeliveryEdge:
    cursor: str
    node: Delivery


@strawberry.type
class DeliveryConnection:
    total_count: int
    edges: list[DeliveryEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainDelivery]) -> DeliveryConnection:
        edges = [DeliveryEdge(cursor=c, node=Delivery.from_domain(d)) for c, d in page.items]
        return cls(
            total_count=page.total,
            edges=edges,
            page_info=PageInfo.of(page.has_next, edges),
        )


@strawberry.type
class PublishedEvent:
    event_id: strawberry.ID
    duplicate: bool


@strawberry.enum
class CredentialKind(enum.Enum):
    BASIC = "BASIC"
    BEARER = "BEARER"
    HEADER = "HEADER"


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
    data: JSON  # secrets redacted
    hash: str  # hex SHA-256 over previousHash and this record's canonical JSON
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
            hash=entry["hash"],
            previous_hash=entry["previousHash"],
        )


@strawberry.type
class AuditRecordEdge:
    cursor: str
    node: AuditRecord


@strawberry.type
class AuditRecordConnection:
    total_count: int
    edges: list[AuditRecordEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[dict[str, Any]]) -> AuditRecordConnection:
        edges = [AuditRecordEdge(cursor=c, node=AuditRecord.from_entry(e)) for c, e in page.items]
        return cls(
            total_count=page.total,
            edges=edges,
            page_info=PageInfo.of(page.has_next, edges),
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
