"""Organisations and their API keys; a key is stored only as a hash and shown once, when issued."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import InvalidInput, Problem
from domain.retention import RetentionPolicy, check_retention_policy
from domain.roles import SYSTEM_ACTOR, Role

KEY_PREFIX = "hkl_"
_KEY = re.compile(r"hkl_([0-9a-f]{32})_([A-Za-z0-9_-]{20,100})")  # full-matched
MAX_ORGANIZATION_NAME = 100
MAX_KEY_NAME = 100


def check_organization_name(name: str) -> list[Problem]:
    if not name.strip():
        return [Problem("org", "must not be empty")]
    if len(name) > MAX_ORGANIZATION_NAME:
        return [Problem("org", f"must be at most {MAX_ORGANIZATION_NAME} characters")]
    return []


def check_key_name(name: str | None) -> list[Problem]:
    if name is None:
        return []
    if not name.strip():
        return [Problem("name", "must not be empty when given")]
    if len(name) > MAX_KEY_NAME:
        return [Problem("name", f"must be at most {MAX_KEY_NAME} characters")]
    return []


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough (as GitHub and Stripe do for tokens).
    return hashlib.sha256(key.encode()).hexdigest()


def format_key(key_id: UUID, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id.hex}_{secret}"


def key_id_of(key: str) -> UUID | None:
    """The id a presented key claims to have, or None when it is not shaped like one of ours."""
    match = _KEY.fullmatch(key)
    return UUID(match.group(1)) if match else None


class Organization(Aggregate):
    # Plain strings, so that a state snapshots as it is; None keeps forever (as before there were policies).
    retention_payloads: str | None = None
    retention_deliveries: str | None = None

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return ids.organization_id(name)

    @event("Created")
    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def retention_policy(self) -> RetentionPolicy:
        return RetentionPolicy(self.retention_payloads, self.retention_deliveries)

    def set_retention_policy(self, payloads: str | None, deliveries: str | None, actor: str) -> None:
        """Records a new policy (nothing when it is the one in force); refuses a bad one whole."""
        problems = check_retention_policy(payloads, deliveries)
        if problems:
            raise InvalidInput(problems)
        if RetentionPolicy(payloads, deliveries) != self.retention_policy:
            self._retention_policy_set(payloads=payloads, deliveries=deliveries, actor=actor)

    @event("RetentionPolicySet")
    def _retention_policy_set(self, payloads: str | None, deliveries: str | None, actor: str) -> None:
        self.retention_payloads = payloads
        self.retention_deliveries = deliveries


class ApiKey(Aggregate):
    """One API key of one organisation, with one role (and a name to tell it by, if given)."""

    name: str | None = None  # states kept before keys had names have none

    @staticmethod
    def create_id(key_id: UUID, **_: Any) -> UUID:
        return key_id

    @event("Issued")
    def __init__(
        self,
        key_id: UUID,
        organization_id: UUID,
        organization_name: str,
        role: str,
        key_hash: str,
        name: str | None = None,
        actor: str = SYSTEM_ACTOR,  # who issued it, for the audit trail
    ) -> None:
        self.name = name
        self.organization_id = organization_id
        self.organization_name = organization_name
        self.role: str = Role(role).value
        self.key_hash = key_hash
        self.revoked = False

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id}, role={self.role})"

    def matches(self, key: str) -> bool:
        return not self.revoked and hmac.compare_digest(self.key_hash, hash_key(key))

    def revoke(self, actor: str) -> None:
        if not self.revoked:
            self._revoked(actor=actor)

    @event("Revoked")
    def _revoked(self, actor: str) -> None:
        self.revoked = True
