"""Credentials a webhook sends with its requests; the secret is stored (encrypted) and never shown again."""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Problem
from domain.webhooks import RESERVED_HEADERS, header_value_problem, is_header_name

MAX_NAME = 200
MAX_SECRET = 4096
MASK = "••••"


class CredentialKind(enum.StrEnum):
    BASIC = "BASIC"
    BEARER = "BEARER"
    HEADER = "HEADER"


REQUIRED: Mapping[CredentialKind, tuple[str, ...]] = MappingProxyType(
    {
        CredentialKind.BASIC: ("username", "password"),
        CredentialKind.BEARER: ("token",),
        CredentialKind.HEADER: ("headerName", "headerValue"),
    }
)
ALL_PARTS = ("username", "password", "token", "headerName", "headerValue")
HEADER_VALUES = ("token", "headerValue")  # sent as (part of) a header value as they are


def check_credential(name: str, kind: CredentialKind, parts: dict[str, str | None]) -> list[Problem]:
    """Every problem at once; `parts` holds the input fields by their GraphQL names."""
    problems = []
    if not name.strip():
        problems.append(Problem("name", "must not be empty"))
    elif len(name) > MAX_NAME:
        problems.append(Problem("name", f"must be at most {MAX_NAME} characters"))
    required = REQUIRED[kind]
    for part in ALL_PARTS:
        value = parts.get(part)
        if part in required:
            if not value:
                problems.append(Problem(part, f"is required for a {kind.value} credential"))
            elif len(value) > MAX_SECRET:
                problems.append(Problem(part, f"must be at most {MAX_SECRET} characters"))
            elif part in HEADER_VALUES and (value_problem := header_value_problem(value)):
                problems.append(Problem(part, value_problem))
            elif any(ch in value for ch in "\r\n\0"):
                problems.append(Problem(part, "must not contain line breaks or NUL characters"))
        elif value is not None:
            problems.append(Problem(part, f"does not belong to a {kind.value} credential"))
    if kind is CredentialKind.BASIC and ":" in (parts.get("username") or ""):
        problems.append(Problem("username", "must not contain a colon"))
    header = parts.get("headerName")
    if kind is CredentialKind.HEADER and header:
        if not is_header_name(header):
            problems.append(Problem("headerName", "is not a valid HTTP header name"))
        elif header.lower() in RESERVED_HEADERS:
            problems.append(Problem("headerName", f"{header} is set by Hookline itself"))
    return problems


def mask(secret: str) -> str:
    """At most the last two characters, and only of a secret long enough to keep the rest hidden."""
    return MASK + secret[-2:] if len(secret) >= 8 else MASK


class Credential(Aggregate):
    @event("Created")
    def __init__(
        self, organization_id: UUID, name: str, kind: str, secret: dict[str, str], actor: str
    ) -> None:
        self.organization_id = organization_id
        self.name = name
        self.kind = kind
        self.secret = secret  # the parts, by GraphQL field name; the store encrypts event state

    def __repr__(self) -> str:  # the default would print the secret into any log
        return f"Credential(id={self.id}, kind={self.kind})"

    @property
    def masked_secret(self) -> str:
        main = {"BASIC": "password", "BEARER": "token", "HEADER": "headerValue"}[self.kind]
        return mask(self.secret[main])

    def headers(self) -> dict[str, str]:
        if self.kind == CredentialKind.BASIC:
            raw = f"{self.secret['username']}:{self.secret['password']}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        if self.kind == CredentialKind.BEARER:
            return {"Authorization": "Bearer " + self.secret["token"]}
        return {self.secret["headerName"]: self.secret["headerValue"]}


def credential_data(parts: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in parts.items() if v is not None}
