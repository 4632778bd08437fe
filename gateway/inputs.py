"""GraphQL input types of the contract and their translation into domain values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, overload
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryOptional

from domain.credentials import CredentialKind
from domain.errors import InvalidInput, Problem
from domain.events import Publication
from domain.filters import Condition, FilterOperator
from domain.ids import parse_id
from domain.webhooks import Header, HttpMethod, WebhookSpec

T = TypeVar("T")


@strawberry.input
class HeaderInput:
    name: str
    value: str


@strawberry.input
class ConditionInput:
    field: str
    operator: FilterOperator
    values: list[JSON] | None = None


@strawberry.input
class FilterGroupInput:
    conditions: list[ConditionInput]


@strawberry.input
class CreateWebhookInput:
    name: str
    description: str | None = None
    event_types: list[str]
    target_url: str
    method: HttpMethod | None = HttpMethod.POST
    headers: list[HeaderInput] | None = None
    credential_id: strawberry.ID | None = None
    payload_template: str | None = None
    filters: list[FilterGroupInput] | None = None
    active: bool | None = True
    rate_limit_per_second: int | None = None
    allow_duplicate: bool | None = False
    ordered: bool | None = False

    def to_spec(self) -> WebhookSpec:
        return WebhookSpec(
            name=self.name,
            description=self.description,
            event_types=tuple(self.event_types),
            target_url=self.target_url,
            method=(self.method or HttpMethod.POST).value,
            headers=_headers(self.headers),
            credential_id=_credential_id(self.credential_id),
            payload_template=self.payload_template,
            filters=_filters(self.filters),
            rate_limit_per_second=self.rate_limit_per_second,
            ordered=self.ordered is True,
        )


@strawberry.input(description="Every field optional; only the given ones change.")
class UpdateWebhookInput:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    event_types: list[str] | None = strawberry.UNSET
    target_url: str | None = strawberry.UNSET
    method: HttpMethod | None = strawberry.UNSET
    headers: list[HeaderInput] | None = strawberry.UNSET
    credential_id: strawberry.ID | None = strawberry.UNSET
    payload_template: str | None = strawberry.UNSET
    filters: list[FilterGroupInput] | None = strawberry.UNSET
    rate_limit_per_second: int | None = strawberry.UNSET
    ordered: bool | None = strawberry.UNSET

    def to_changes(self) -> dict[str, Any]:
        """The given fields as WebhookSpec changes; null clears the optional ones."""
        changes: dict[str, Any] = {}
        problems: list[Problem] = []
        for name in ("name", "event_types", "target_url", "method"):
            value = getattr(self, name)
            if value is None:
                problems.append(Problem(_camel(name), "must not be null"))
            elif value is not strawberry.UNSET:
                changes[name] = value
        if problems:
            raise InvalidInput(problems)
        if "event_types" in changes:
            changes["event_types"] = tuple(changes["event_types"])
        if "method" in changes:
            changes["method"] = changes["method"].value
        if self.description is not strawberry.UNSET:
            changes["description"] = self.description
        if self.headers is not strawberry.UNSET:
            changes["headers"] = _headers(self.headers)
        if self.credential_id is not strawberry.UNSET:
            changes["credential_id"] = _credential_id(self.credential_id)
        if self.payload_template is not strawberry.UNSET:
            changes["payload_template"] = self.payload_template
        if self.filters is not strawberry.UNSET:
            changes["filters"] = _filters(self.filters)
        if self.rate_limit_per_second is not strawberry.UNSET:
            changes["rate_limit_per_second"] = self.rate_limit_per_second
        if self.ordered is not strawberry.UNSET:
            changes["ordered"] = self.ordered is True
        return changes


def built_directly(cls: type[T]) -> type[T]:
    """An input of scalar fields only, built straight from the value graphql-core coerced.

    Strawberry converts an input field by field, resolving each field's type every time, which is most
    of a large `publishEvents`' cost; scalars need no converting (graphql-core parsed them), so this sets
    the definition's `from_input` hook to pass them on as they are."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    for field in definition.fields:
        type_ = field.type.of_type if isinstance(field.type, StrawberryOptional) else field.type
        if type_ not in _SCALARS:
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a scalar: convert it field by field")
    names: list[tuple[str, str]] = []

    def from_input(built: type[T], value: Mapping[str, Any], context: InputContext) -> T:
        if not names:  # the schema's names (its name converter), once
            names.extend(
                (context.config.name_converter.from_field(f), f.python_name) for f in definition.fields
            )
        return built(**{python: value[graphql] for graphql, python in names if graphql in value})

    definition.from_input = from_input
    return cls


_SCALARS: tuple[object, ...] = (str, int, float, bool, datetime, JSON)


@built_directly
@strawberry.input
class PublishEventInput:
    type: str
    payload: JSON
    idempotency_key: str | None = None
    occurred_at: datetime | None = None

    def to_domain(self) -> Publication:
        return Publication(
            type=self.type,
            payload=self.payload,
            idempotency_key=self.idempotency_key,
            occurred_at=utc(self.occurred_at),
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _headers(headers: list[HeaderInput] | None) -> tuple[Header, ...]:
    return tuple(Header(name=h.name, value=h.value) for h in headers or ())


def _filters(groups: list[FilterGroupInput] | None) -> tuple[tuple[Condition, ...], ...]:
    return tuple(
        tuple(Condition(field=c.field, operator=c.operator.value, values=c.values) for c in group.conditions)
        for group in groups or ()
    )


def _credential_id(value: str | None) -> UUID | None:
    if value is None:
        return None
    # A malformed id names no credential; the application reports it with every other problem.
    return id_argument(value)


NO_SUCH_ID = UUID(int=0)


def id_argument(value: str) -> UUID:
    """An id argument. One that is not an id of ours names nothing: it becomes the nil id, which the
    application answers like any unknown id (after checking the caller's permission)."""
    return parse_id(value) or NO_SUCH_ID


def optional_id_argument(value: str | None) -> UUID | None:
    return None if value is None else id_argument(value)


@strawberry.input
class CreateCredentialInput:
    name: str
    kind: CredentialKind
    username: str | None = None  # BASIC
    password: str | None = None
    token: str | None = None  # BEARER
    header_name: str | None = None  # HEADER
    header_value: str | None = None
    token_url: str | None = None  # OAUTH2_CLIENT_CREDENTIALS
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    audience: str | None = None
    certificate_pem: str | None = None  # MTLS
    private_key_pem: str | None = None
    ca_bundle_pem: str | None = None  # any kind: a CA trusted for this credential's targets

    def parts(self) -> dict[str, str | None]:
        return {
            "username": self.username,
            "password": self.password,
            "token": self.token,
            "headerName": self.header_name,
            "headerValue": self.header_value,
            "tokenUrl": self.token_url,
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "scope": self.scope,
            "audience": self.audience,
            "certificatePem": self.certificate_pem,
            "privateKeyPem": self.private_key_pem,
            "caBundlePem": self.ca_bundle_pem,
        }


@strawberry.input
class DefineEventTypeInput:
    name: str  # lowercase words joined by dots or underscores, e.g. "monitor.alert"
    description: str | None = None
    sample_payload: JSON  # an object; its keys and dotted paths become the type's variables


@overload
def utc(moment: datetime) -> datetime: ...
@overload
def utc(moment: None) -> None: ...


def utc(moment: datetime | None) -> datetime | None:
    """A DateTime argument in UTC; one written without an offset is read as UTC (the contract's zone)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
