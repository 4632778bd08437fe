"""Who may do what: the contract's role table as data."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from uuid import UUID

from domain.errors import Forbidden


class Role(enum.StrEnum):
    ADMIN = "admin"
    PUBLISHER = "publisher"
    AUDITOR = "auditor"
    VIEWER = "viewer"


class Permission(enum.Enum):
    MANAGE_WEBHOOKS = "manage webhooks"
    READ_WEBHOOKS = "read webhooks"
    READ_SIGNING_SECRETS = "read signing secrets"
    READ_WEBHOOK_SECRETS = "read secret header values and target URLs as set"
    READ_DELIVERIES = "read deliveries"
    MANAGE_DELIVERIES = "manage deliveries"
    MANAGE_CREDENTIALS = "manage credentials"
    READ_CREDENTIALS = "read credentials"
    READ_EVENT_TYPES = "read event types"
    DEFINE_EVENT_TYPES = "define event types"
    PUBLISH_EVENTS = "publish events"
    READ_AUDIT_LOG = "read audit log"
    MANAGE_API_KEYS = "manage API keys"
    READ_RETENTION_POLICY = "read the retention policy"
    SET_RETENTION_POLICY = "set the retention policy"
    ERASE_EVENTS = "erase events' payloads and bodies"


_READ_ALL = frozenset(
    {
        Permission.READ_WEBHOOKS,
        Permission.READ_DELIVERIES,
        Permission.READ_CREDENTIALS,
        Permission.READ_EVENT_TYPES,
        Permission.READ_AUDIT_LOG,
        Permission.READ_RETENTION_POLICY,
    }
)

GRANTS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.ADMIN: frozenset(Permission),
        Role.PUBLISHER: frozenset({Permission.PUBLISH_EVENTS, Permission.READ_EVENT_TYPES}),
        Role.AUDITOR: _READ_ALL,
        Role.VIEWER: frozenset(
            {Permission.READ_WEBHOOKS, Permission.READ_DELIVERIES, Permission.READ_EVENT_TYPES}
        ),
    }
)


@dataclass(frozen=True)
class Principal:
    """The caller behind an API key: one organisation, one role."""

    key_id: UUID
    organization_id: UUID
    organization_name: str
    role: Role

    @property
    def actor(self) -> str:
        return str(self.key_id)

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            raise Forbidden(f"the {self.role.value} role may not {permission.value}")


SYSTEM_ACTOR = "system"
