"""The Webhook aggregate and the rules for its configuration."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import NotFound, Problem
from domain.filters import CompiledFilter, Condition, check_filters, compile_filters
from domain.targets import literal_host_problem, split_target
from domain.templates import CompiledTemplate, check_template, compile_template


class HttpMethod(enum.StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


METHODS = tuple(method.value for method in HttpMethod)
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_EVENT_TYPES = 100
MAX_EVENT_TYPE = 200
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4096
MAX_TEMPLATE = 64 * 1024
MAX_RATE_LIMIT = 100_000
ROTATION_OVERLAP = timedelta(hours=24)

# RFC 9110 `token` (a field name), matched in full: `$` would also match before a final newline.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 field values hold no control character but HTAB: CR, LF and NUL split or cut the request.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers that Hookline itself sets on every request and that a webhook may therefore not replace.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


@dataclass(frozen=True)
class Header:
    name: str
    value: str


@dataclass(frozen=True)
class WebhookSpec:
    """Everything an admin declares about a webhook (what is sent where), without its state."""

    name: str
    event_types: tuple[str, ...]
    target_url: str
    description: str | None = None
    method: str = "POST"
    headers: tuple[Header, ...] = ()
    credential_id: UUID | None = None
    payload_template: str | None = None
    filters: tuple[tuple[Condition, ...], ...] = ()
    rate_limit_per_second: int | None = None
    ordered: bool = False

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["event_types"] = list(self.event_types)
        data["headers"] = [asdict(h) for h in self.headers]
        data["filters"] = self._filters_data()
        return data

    def _filters_data(self) -> list[list[dict[str, Any]]]:
        return [[asdict(c) for c in group] for group in self.filters]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> WebhookSpec:
        return cls(
            name=data["name"],
            event_types=tuple(data["event_types"]),
            target_url=data["target_url"],
            description=data.get("description"),
            method=data.get("method", "POST"),
            headers=tuple(Header(**h) for h in data.get("headers", ())),
            credential_id=_uuid_or_none(data.get("credential_id")),
            payload_template=data.get("payload_template"),
            filters=tuple(tuple(Condition(**c) for c in group) for group in data.get("filters", ())),
            rate_limit_per_second=data.get("rate_limit_per_second"),
            ordered=bool(data.get("ordered", False)),
        )

    @property
    def content_type(self) -> str:
        for header in self.headers:
            if header.name.lower() == "content-type":
                return header.value
        return "application/json"

    @property
    def sends_json(self) -> bool:
        media = self.content_type.split(";", 1)[0].strip().lower()
        return media == "application/json" or media.endswith("+json")

    def filters_key(self) -> str:
        """The filters as canonical JSON: what compiled filters are cached by."""
        return json.dumps(self._filters_data(), sort_keys=True)

    def changed(self, changes: dict[str, Any]) -> WebhookSpec:
        return replace(self, **changes)

    def fingerprint(self) -> str:
        """What makes two webhooks the same for duplicate detection."""
        same = {
            "event_types": sorted(set(self.event_types)),
            "target_url": self.target_url,
            "method": self.method,
            "filters": self.to_data()["filters"],
            "payload_template": self.payload_template,
        }
        return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()


def _uuid_or_none(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    return UUID(str(value))


def compiled_filters(spec: WebhookSpec) -> CompiledFilter:
    """The spec's filters, compiled as written in JSON (so as stored): to match events against."""
    groups = tuple(tuple(Condition(**c) for c in group) for group in json.loads(spec.filters_key()))
    return compile_filters(groups)


@dataclass(frozen=True)
class SavedWebhook:
    """A saved version of a webhook with what each of its events and deliveries needs, built once:
    its spec (`Webhook.spec` builds it from data at each access), compiled filters and template. The
    read model keeps them by (id, version), since a version never changes once saved."""

    id: UUID
    version: int
    spec: WebhookSpec

    @classmethod
    def of(cls, webhook: Webhook) -> SavedWebhook:
        """Of a webhook as saved (not one with changes not saved: its version is not yet theirs)."""
        return cls(webhook.id, webhook.version, webhook.spec)

    # Each compiled when first needed: a fan-out never renders, a delivery never matches.
    @cached_property
    def filters(self) -> CompiledFilter:
        return compiled_filters(self.spec)

    @cached_property
    def template(self) -> CompiledTemplate | None:
        template = self.spec.payload_template
        return compile_template(template, json_body=self.spec.sends_json) if template is not None else None


def check_spec(
    spec: WebhookSpec,
    *,
    allow_private_targets: bool,
    declared: Sequence[tuple[str, frozenset[str]]] = (),
) -> list[Problem]:
    """Every problem of a configuration that can be seen without looking anything up.

    `declared` holds the variables of each of the webhook's event types that is defined.
    """
    problems: list[Problem] = []
    if not spec.name.strip():
        problems.append(Problem("name", "must not be empty"))
    elif len(spec.name) > MAX_NAME:
        problems.append(Problem("name", f"must be at most {MAX_NAME} characters"))
    if spec.description is not None and len(spec.description) > MAX_DESCRIPTION:
        problems.append(Problem("description", f"must be at most {MAX_DESCRIPTION} characters"))
    problems += _event_type_problems(spec.event_types)
    parts, url_problems = split_target(spec.target_url)
    problems += url_problems
    if parts is not None and parts.hostname:
        host_problem = literal_host_problem(parts.hostname, allow_private=allow_private_targets)
        if host_problem:
            problems.append(host_problem)
    if spec.method not in METHODS:
        problems.append(Problem("method", f"must be one of {', '.join(METHODS)}"))
    problems += _header_problems(spec.headers)
    if spec.rate_limit_per_second is not None and not (1 <= spec.rate_limit_per_second <= MAX_RATE_LIMIT):
        problems.append(Problem("rateLimitPerSecond", f"must be between 1 and {MAX_RATE_LIMIT}, or null"))
    if spec.payload_template is not None:
        if len(spec.payload_template) > MAX_TEMPLATE:
            problems.append(Problem("payloadTemplate", f"must be at most {MAX_TEMPLATE} characters"))
        else:
            problems += check_template(spec.payload_template, json_body=spec.sends_json, declared=declared)
    problems += check_filters(spec.filters)
    return problems


def _event_type_problems(event_types: tuple[str, ...]) -> list[Problem]:
    if not event_types:
        return [Problem("eventTypes", "must name at least one event type")]
    if len(event_types) > MAX_EVENT_TYPES:
        return [Problem("eventTypes", f"must name at most {MAX_EVENT_TYPES} event types")]
    problems = []
    for i, name in enumerate(event_types):
        if not name.strip():
            problems.append(Problem(f"eventTypes[{i}]", "must not be empty"))
        elif len(name) > MAX_EVENT_TYPE:
            problems.append(Problem(f"eventTypes[{i}]", f"must be at most {MAX_EVENT_TYPE} characters"))
    return problems


def is_header_name(name: str) -> bool:
    return _TOKEN.fullmatch(name) is not None


def header_value_problem(value: str) -> str | None:
    """Why a header value cannot be sent as it is, or None."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return f"must not contain control characters such as line breaks or NUL (found U+{ord(found[0]):04X})"


def _header_problems(headers: tuple[Header, ...]) -> list[Problem]:
    if len(headers) > MAX_HEADERS:
        return [Problem("headers", f"must be at most {MAX_HEADERS} headers")]
    problems = []
    seen: set[str] = set()
    for i, header in enumerate(headers):
        lowered = header.name.lower()
        if not is_header_name(header.name):
            problems.append(Problem(f"headers[{i}].name", "is not a valid HTTP header name"))
        elif lowered in RESERVED_HEADERS:
            problems.append(Problem(f"headers[{i}].name", f"{header.name} is set by Hookline itself"))
        elif lowered in seen:
            problems.append(Problem(f"headers[{i}].name", f"{header.name} is given twice"))
        seen.add(lowered)
        if value_problem := header_value_problem(header.value):
            problems.append(Problem(f"headers[{i}].value", value_problem))
        elif len(header.value) > MAX_HEADER_VALUE:
            problems.append(Problem(f"headers[{i}].value", f"must be at most {MAX_HEADER_VALUE} characters"))
    return problems


class Webhook(Aggregate):
    """A declared webhook: what to send, where, and whether it is switched on."""

    @event("Created")
    def __init__(
        self,
        organization_id: UUID,
        spec: dict[str, Any],
        active: bool,
        signing_secret: str,
        actor: str,
    ) -> None:
        self.organization_id = organization_id
        self.spec_data = spec  # plain data, so that the state snapshots and transcodes as it is
        self.active = active
        self.disabled_reason: str | None = None
        self.signing_secret = signing_secret
        self.previous_secret: str | None = None
        self.previous_secret_expires: datetime | None = None
        self.deleted = False

    def __repr__(self) -> str:  # the default one would print the signing secrets into any log
        return f"Webhook(id={self.id}, version={self.version})"

    @property
    def spec(self) -> WebhookSpec:
        return WebhookSpec.from_data(self.spec_data)

    def check_not_deleted(self) -> None:
        if self.deleted:
            raise NotFound("no such webhook")

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets to sign with now: the current one, and a rotated one until it expires."""
        secrets = [self.signing_secret]
        if self.previous_secret and self.previous_secret_expires and now < self.previous_secret_expires:
            secrets.append(self.previous_secret)
        return secrets

    def update(self, spec: WebhookSpec, actor: str) -> None:
        self.check_not_deleted()
        changes = {key: value for key, value in spec.to_data().items() if self.spec_data.get(key) != value}
        if changes:
            self._updated(changes=changes, actor=actor)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor: str) -> None:
        self.spec_data = {**self.spec_data, **changes}

    def set_active(self, active: bool, actor: str, reason: str | None = None) -> None:
        self.check_not_deleted()
        if active and not self.active:
            self._activated(actor=actor)
        elif not active and self.active:
            self._deactivated(reason=reason, actor=actor)

    @event("Activated")
    def _activated(self, actor: str) -> None:
        self.active = True
        self.disabled_reason = None

    @event("Deactivated")
    def _deactivated(self, reason: str | None, actor: str) -> None:
        self.active = False
        self.disabled_reason = reason

    def rotate_signing_secret(self, new_secret: str, now: datetime, actor: str) -> None:
        self.check_not_deleted()
        self._signing_secret_rotated(
            new_secret=new_secret, previous_expires=now + ROTATION_OVERLAP, actor=actor
        )

    @event("SigningSecretRotated")
    def _signing_secret_rotated(self, new_secret: str, previous_expires: datetime, actor: str) -> None:
        self.previous_secret = self.signing_secret
        self.previous_secret_expires = previous_expires
        self.signing_secret = new_secret

    def delete(self, actor: str) -> None:
        self.check_not_deleted()
        self._deleted(actor=actor)

    @event("Deleted")
    def _deleted(self, actor: str) -> None:
        self.deleted = True
        self.active = False
