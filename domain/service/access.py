"""Organisations, API keys and the audit trail: who may call, and what was done."""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from domain import ids
from domain.audit import Verification
from domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from domain.organizations import (
    ApiKey,
    Organization,
    check_key_name,
    check_organization_name,
    format_key,
    hash_key,
    key_id_of,
)
from domain.retention import RetentionPolicy
from domain.roles import SYSTEM_ACTOR, Permission, Principal, Role
from domain.service.base import (
    HooklineBase,
    page_size,
    urlsafe,
)
from domain.views import Page


class AccessCommands(HooklineBase):
    def issue_key(self, organization_name: str, role: Role) -> str:
        """Creates the organisation if new and returns a new key, which is stored only as a hash (the
        command line's way to the first key of an organisation)."""
        problems = check_organization_name(organization_name)
        if problems:
            raise InvalidInput(problems)
        organization_id = ids.organization_id(organization_name)
        if not self._fresh(Organization, [organization_id]):
            with suppress(IntegrityError):  # created meanwhile by another process: just as good
                self.save(Organization(name=organization_name))
        key, api_key = self._new_key(organization_id, organization_name, role, None, SYSTEM_ACTOR)
        self.save(api_key)
        return key

    def create_api_key(self, principal: Principal, name: str | None, role: Role) -> tuple[str, ApiKey]:
        """A new key of the caller's organisation: the key itself, shown this once, and its record."""
        principal.require(Permission.MANAGE_API_KEYS)
        problems = check_key_name(name)
        if problems:
            raise InvalidInput(problems)
        key, api_key = self._new_key(
            principal.organization_id, principal.organization_name, role, name, principal.actor
        )
        self._save_and_catch_up(api_key)
        return key, api_key

    def _new_key(
        self, organization_id: UUID, organization_name: str, role: Role, name: str | None, actor: str
    ) -> tuple[str, ApiKey]:
        key_id = uuid4()
        key = format_key(key_id, urlsafe(self.random_bytes(32)))
        api_key = ApiKey(
            key_id=key_id,
            organization_id=organization_id,
            organization_name=organization_name,
            role=role.value,
            key_hash=hash_key(key),
            name=name,
            actor=actor,
        )
        return key, api_key

    def organization_api_keys(self, principal: Principal) -> list[ApiKey]:
        """The caller's organisation's keys (never their value), oldest first."""
        principal.require(Permission.MANAGE_API_KEYS)
        return self.views.api_keys(principal.organization_id)

    def revoke_api_key(self, principal: Principal, key_id: UUID) -> ApiKey:
        """Revokes a key of the caller's organisation (another's is not found: it is not said to
        exist); the gateways refuse it within seconds, on open sockets too."""
        principal.require(Permission.MANAGE_API_KEYS)
        api_key = self._fresh(ApiKey, [key_id]).get(key_id)
        if api_key is None or api_key.organization_id != principal.organization_id:
            raise NotFound("no such API key")
        api_key.revoke(actor=principal.actor)
        self._save_and_catch_up(api_key)
        return api_key

    def revoke_key(self, key_id: UUID, actor: str = SYSTEM_ACTOR) -> bool:
        """Revokes a key (from the command line); False when there is no such key."""
        api_key = self._fresh(ApiKey, [key_id]).get(key_id)
        if api_key is None:
            return False
        api_key.revoke(actor=actor)
        self.save(api_key)
        return True

    def api_keys(self, organization_name: str | None) -> list[ApiKey]:
        """Keys (never their value), oldest first, of one organisation or all."""
        self.follower.catch_up()
        organization = ids.organization_id(organization_name) if organization_name is not None else None
        return self.views.api_keys(organization)

    def organization_exists(self, organization_id: UUID) -> bool:
        return self._fresh(Organization, [organization_id]).get(organization_id) is not None

    def retention_policies(self, organization_ids: list[UUID]) -> dict[UUID, RetentionPolicy]:
        """The policies of these organisations that keep something less than forever (the sweep's)."""
        found = self._fresh(Organization, organization_ids)
        policies = {org: o.retention_policy for org, o in found.items()}
        return {org: p for org, p in policies.items() if p.payloads or p.deliveries}

    def authenticate(self, key: str) -> Principal:
        key_id = key_id_of(key)
        api_key = self._fresh(ApiKey, [key_id]).get(key_id) if key_id else None
        if api_key is None or not api_key.matches(key):
            raise Unauthenticated("missing, unknown or revoked API key")
        return Principal(
            key_id=api_key.id,
            organization_id=api_key.organization_id,
            organization_name=api_key.organization_name,
            role=Role(api_key.role),
        )

    def retention_policy(self, principal: Principal) -> RetentionPolicy:
        """The caller's organisation's policy, as the store has it (forever until one is set)."""
        principal.require(Permission.READ_RETENTION_POLICY)
        return self._organization(principal).retention_policy

    def set_retention_policy(
        self, principal: Principal, payloads: str | None, deliveries: str | None
    ) -> RetentionPolicy:
        """Sets the caller's organisation's policy, recorded with the caller for the audit trail."""
        principal.require(Permission.SET_RETENTION_POLICY)
        organization = self._organization(principal)
        organization.set_retention_policy(payloads, deliveries, actor=principal.actor)
        try:
            self._save_and_catch_up(organization)
        except IntegrityError as error:  # another admin's change was saved first
            raise Conflict("the retention policy was set meanwhile; try again") from error
        return organization.retention_policy

    def _organization(self, principal: Principal) -> Organization:
        organization = self._fresh(Organization, [principal.organization_id]).get(principal.organization_id)
        if organization is None:  # every key's organisation is created with its first key
            raise NotFound("no such organisation")
        return organization

    def audit_log(
        self, principal: Principal, *, aggregate_id: UUID | None, first: int, after: str | None
    ) -> Page[dict[str, Any]]:
        principal.require(Permission.READ_AUDIT_LOG)
        self.follower.catch_up()
        return self.views.audit_page(principal.organization_id, aggregate_id, page_size(first), after)

    def verify_audit_log(self, principal: Principal) -> Verification:
        principal.require(Permission.READ_AUDIT_LOG)
        self.follower.catch_up()
        return self.views.verify_audit(principal.organization_id)
