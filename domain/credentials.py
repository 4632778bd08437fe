"""Credentials a webhook sends with its requests; the secret is stored (encrypted) and never shown again."""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.certificates import MAX_PEM, check_ca_bundle, check_client_certificate
from domain.errors import Problem
from domain.targets import split_target
from domain.webhooks import RESERVED_HEADERS, header_value_problem, is_header_name

MAX_NAME = 200
MAX_SECRET = 4096
MASK = "••••"


class CredentialKind(enum.StrEnum):
    BASIC = "BASIC"
    BEARER = "BEARER"
    HEADER = "HEADER"
    OAUTH2_CLIENT_CREDENTIALS = "OAUTH2_CLIENT_CREDENTIALS"
    MTLS = "MTLS"


REQUIRED: Mapping[CredentialKind, tuple[str, ...]] = MappingProxyType(
    {
        CredentialKind.BASIC: ("username", "password"),
        CredentialKind.BEARER: ("token",),
        CredentialKind.HEADER: ("headerName", "headerValue"),
        CredentialKind.OAUTH2_CLIENT_CREDENTIALS: ("tokenUrl", "clientId", "clientSecret"),
        CredentialKind.MTLS: ("certificatePem", "privateKeyPem"),
    }
)
OPTIONAL: Mapping[CredentialKind, tuple[str, ...]] = MappingProxyType(
    {CredentialKind.OAUTH2_CLIENT_CREDENTIALS: ("scope", "audience")}
)
ANY_KIND = ("caBundlePem",)  # trusted for the credential's targets (and token endpoint) only
ALL_PARTS = (
    *dict.fromkeys(p for parts in (*REQUIRED.values(), *OPTIONAL.values()) for p in parts),
    *ANY_KIND,
)
HEADER_VALUES = ("token", "headerValue")  # sent as (part of) a header value as they are
PEM_PARTS = ("certificatePem", "privateKeyPem", "caBundlePem")
# The part whose last characters `maskedSecret` shows; an MTLS credential shows none of its key.
MAIN_SECRET = MappingProxyType(
    {
        "BASIC": "password",
        "BEARER": "token",
        "HEADER": "headerValue",
        "OAUTH2_CLIENT_CREDENTIALS": "clientSecret",
    }
)


@dataclass(frozen=True)
class TokenGrant:
    """An OAuth2 client-credentials grant: where to ask for a token, and as whom. A value: the
    sender keeps one token per grant."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    audience: str | None = None
    ca_bundle_pem: str | None = field(default=None, repr=False)  # the endpoint may be on the private CA

    def form(self) -> dict[str, str]:
        extra = {"scope": self.scope, "audience": self.audience}
        return {"grant_type": "client_credentials", **{k: v for k, v in extra.items() if v}}


@dataclass(frozen=True)
class Tls:
    """What a credential changes in TLS to its targets: a client certificate and key to present, a
    private CA to trust besides the system's. A value: the sender keeps one TLS context per value."""

    certificate_pem: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    ca_bundle_pem: str | None = field(default=None, repr=False)


def check_credential(
    name: str, kind: CredentialKind, parts: dict[str, str | None], now: datetime
) -> list[Problem]:
    """Every problem at once; `parts` holds the input fields by their GraphQL names. A token URL's
    resolved addresses are the caller's to check (`tokenUrl` is checked here as written)."""
    problems = []
    if not name.strip():
        problems.append(Problem("name", "must not be empty"))
    elif len(name) > MAX_NAME:
        problems.append(Problem("name", f"must be at most {MAX_NAME} characters"))
    required = REQUIRED[kind]
    allowed = (*required, *OPTIONAL.get(kind, ()), *ANY_KIND)
    for part in ALL_PARTS:
        value = parts.get(part)
        if part in required and not value:
            problems.append(Problem(part, f"is required for a {kind.value} credential"))
        elif part not in allowed and value is not None:
            problems.append(Problem(part, f"does not belong to a {kind.value} credential"))
        elif value is not None and (problem := _part_problem(part, value)):
            problems.append(Problem(part, problem))
    if kind is CredentialKind.BASIC and ":" in (parts.get("username") or ""):
        problems.append(Problem("username", "must not contain a colon"))
    header = parts.get("headerName")
    if kind is CredentialKind.HEADER and header:
        if not is_header_name(header):
            problems.append(Problem("headerName", "is not a valid HTTP header name"))
        elif header.lower() in RESERVED_HEADERS:
            problems.append(Problem("headerName", f"{header} is set by Hookline itself"))
    token_url = parts.get("tokenUrl")
    if kind is CredentialKind.OAUTH2_CLIENT_CREDENTIALS and token_url and not _fields(problems, "tokenUrl"):
        problems += split_target(token_url, field="tokenUrl")[1]
    certificate, key = parts.get("certificatePem"), parts.get("privateKeyPem")
    if certificate and key and not _fields(problems, "certificatePem", "privateKeyPem"):
        problems += check_client_certificate(certificate, key, now)
    bundle = parts.get("caBundlePem")
    if bundle and not _fields(problems, "caBundlePem"):
        problems += check_ca_bundle(bundle)
    return problems


def _part_problem(part: str, value: str) -> str | None:
    if not value:
        return "must not be empty"
    if part in PEM_PARTS:
        return f"must be at most {MAX_PEM} characters" if len(value) > MAX_PEM else None
    if len(value) > MAX_SECRET:
        return f"must be at most {MAX_SECRET} characters"
    if part in HEADER_VALUES:
        return header_value_problem(value)
    if any(ch in value for ch in "\r\n\0"):
        return "must not contain line breaks or NUL characters"
    return None


def _fields(problems: list[Problem], *names: str) -> bool:
    return any(p.field in names for p in problems)


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
        main = MAIN_SECRET.get(self.kind)
        return mask(self.secret[main]) if main else MASK

    def headers(self) -> dict[str, str]:
        """The headers it adds as they are (an OAuth2 token is the sender's to fetch)."""
        if self.kind == CredentialKind.BASIC:
            raw = f"{self.secret['username']}:{self.secret['password']}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        if self.kind == CredentialKind.BEARER:
            return {"Authorization": "Bearer " + self.secret["token"]}
        if self.kind == CredentialKind.HEADER:
            return {self.secret["headerName"]: self.secret["headerValue"]}
        return {}

    def token_grant(self) -> TokenGrant | None:
        if self.kind != CredentialKind.OAUTH2_CLIENT_CREDENTIALS:
            return None
        s = self.secret
        return TokenGrant(
            s["tokenUrl"],
            s["clientId"],
            s["clientSecret"],
            s.get("scope"),
            s.get("audience"),
            s.get("caBundlePem"),
        )

    def tls(self) -> Tls | None:
        s = self.secret
        if not (s.get("certificatePem") or s.get("caBundlePem")):
            return None
        return Tls(s.get("certificatePem"), s.get("privateKeyPem"), s.get("caBundlePem"))


def credential_data(parts: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in parts.items() if v is not None}
