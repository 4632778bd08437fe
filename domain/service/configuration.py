"""What admins declare: webhooks, credentials, event types; and trying a webhook out."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import IntegrityError

from domain.built_in_types import BUILT_IN
from domain.catalogue import EventTypeSpec, check_event_type
from domain.credentials import Credential, CredentialKind, check_credential, credential_data
from domain.errors import Conflict, InvalidInput, Problem, RenderedBodyTooLarge
from domain.event_types import EventType
from domain.health import NEVER_ATTEMPTED, WebhookHealth
from domain.requests import Message, OutgoingRequest, build_request
from domain.roles import Permission, Principal
from domain.service.base import (
    HooklineBase,
    page_size,
)
from domain.signing import SECRET_BYTES, new_signing_secret
from domain.targets import address_allowed, literal_host_problem, refusal, split_target
from domain.views import Page
from domain.webhooks import SavedWebhook, Webhook, WebhookSpec, check_spec


class ConfigurationCommands(HooklineBase):
    def create_webhook(
        self, principal: Principal, spec: WebhookSpec, *, active: bool, allow_duplicate: bool
    ) -> Webhook:
        principal.require(Permission.MANAGE_WEBHOOKS)
        self._check_spec(principal, spec)
        if not allow_duplicate:
            self._check_not_duplicate(principal, spec, exclude=None)
        webhook = Webhook(
            organization_id=principal.organization_id,
            spec=spec.to_data(),
            active=active,
            signing_secret=new_signing_secret(self.random_bytes(SECRET_BYTES)),
            actor=principal.actor,
        )
        self._save_and_catch_up(webhook)
        return webhook

    def update_webhook(
        self,
        principal: Principal,
        webhook_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None,
    ) -> Webhook:
        principal.require(Permission.MANAGE_WEBHOOKS)
        webhook = self._webhook(principal, webhook_id)
        if expected_version is not None and expected_version != webhook.version:
            raise Conflict(
                f"the webhook is at version {webhook.version}, not {expected_version}; "
                "reload it and apply your change again"
            )
        spec = webhook.spec.changed(changes)
        self._check_spec(principal, spec)
        self._check_not_duplicate(principal, spec, exclude=webhook.id)
        webhook.update(spec, actor=principal.actor)
        self._save_and_catch_up(webhook)
        return webhook

    def set_webhook_active(self, principal: Principal, webhook_id: UUID, active: bool) -> Webhook:
        principal.require(Permission.MANAGE_WEBHOOKS)
        webhook = self._webhook(principal, webhook_id)
        webhook.set_active(active, actor=principal.actor)
        self._save_and_catch_up(webhook)
        return webhook

    def delete_webhook(self, principal: Principal, webhook_id: UUID) -> None:
        principal.require(Permission.MANAGE_WEBHOOKS)
        webhook = self._webhook(principal, webhook_id)
        webhook.delete(actor=principal.actor)
        self._save_and_catch_up(webhook)

    def rotate_signing_secret(self, principal: Principal, webhook_id: UUID) -> Webhook:
        principal.require(Permission.MANAGE_WEBHOOKS)
        webhook = self._webhook(principal, webhook_id)
        webhook.rotate_signing_secret(
            new_signing_secret(self.random_bytes(SECRET_BYTES)),
            now=self.clock(),
            actor=principal.actor,
        )
        self._save_and_catch_up(webhook)
        return webhook

    def webhook(self, principal: Principal, webhook_id: UUID) -> Webhook | None:
        principal.require(Permission.READ_WEBHOOKS)
        return self.views.webhook(principal.organization_id, webhook_id)

    def webhook_health(self, principal: Principal, webhook_ids: Sequence[UUID]) -> dict[UUID, WebhookHealth]:
        """The health over the last day of each of the caller's webhooks (another organisation's
        webhook is one never attempted)."""
        principal.require(Permission.READ_WEBHOOKS)
        found = self.views.webhook_health(principal.organization_id, webhook_ids, self.clock())
        return {webhook_id: found.get(webhook_id, NEVER_ATTEMPTED) for webhook_id in webhook_ids}

    def webhooks(
        self,
        principal: Principal,
        *,
        first: int,
        after: str | None,
        active: bool | None,
        event_type: str | None,
    ) -> Page[Webhook]:
        principal.require(Permission.READ_WEBHOOKS)
        return self.views.webhooks(
            principal.organization_id,
            first=page_size(first),
            after=after,
            active=active,
            event_type=event_type,
        )

    def webhook_as_of(
        self, principal: Principal, webhook_id: UUID, *, version: int | None, at: datetime | None
    ) -> Webhook | None:
        """The webhook as it stood at a version or a moment, deleted or not; None before it existed."""
        principal.require(Permission.READ_WEBHOOKS)
        if (version is None) == (at is None):
            raise InvalidInput([Problem("version", "give exactly one of version and at")])
        if version is not None and version < 1:
            raise InvalidInput([Problem("version", "must be 1 or more")])
        if at is not None:
            version = None
            for domain_event in self.events.get(webhook_id):
                if cast(DomainEvent, domain_event).timestamp > at:
                    break
                version = domain_event.originator_version
            if version is None:
                return None
        try:
            webhook: Aggregate = self.repository.get(webhook_id, version=version)
        except AggregateNotFoundError:
            return None
        if not isinstance(webhook, Webhook) or webhook.organization_id != principal.organization_id:
            return None
        return webhook

    def _check_spec(self, principal: Principal, spec: WebhookSpec) -> None:
        declared = [
            (t.name, frozenset(t.variables))
            for name in dict.fromkeys(spec.event_types)
            if (t := self._event_type(principal.organization_id, name)) is not None
        ]
        problems = check_spec(spec, allow_private_targets=self.allow_private_targets, declared=declared)
        if not any(p.field == "targetUrl" for p in problems):
            problems += self._resolved_target_problems(spec.target_url)
        if spec.credential_id is not None and self._credential(principal, spec.credential_id) is None:
            problems.append(Problem("credentialId", "no such credential"))
        if problems:
            raise InvalidInput(problems)

    def _resolved_target_problems(self, url: str, field: str = "targetUrl") -> list[Problem]:
        """The problems of a URL's host as written (a token URL's: a target's were found with the rest
        of its webhook's) and of the addresses its name resolves to."""
        parts, _ = split_target(url, field)
        host = parts.hostname if parts else None
        if not host:
            return []
        if field != "targetUrl" and (
            problem := literal_host_problem(host, allow_private=self.allow_private_targets, field=field)
        ):
            return [problem]
        if self.allow_private_targets:
            return []
        try:
            ipaddress.ip_address(host.strip("[]"))
            return []  # a literal address was already checked as written
        except ValueError:
            pass
        try:
            addresses = self.resolve(host)
        except LookupError:
            return []  # unresolvable now; checked again after resolution at send time
        for address in addresses:
            if not address_allowed(address, allow_private=False):
                return [Problem(field, f"resolves to {refusal(address)}")]
        return []

    def _check_not_duplicate(self, principal: Principal, spec: WebhookSpec, exclude: UUID | None) -> None:
        self.follower.catch_up()
        other = self.views.duplicate_of(principal.organization_id, spec.fingerprint(), exclude)
        if other is not None:
            raise Conflict(
                f"webhook {other} already has this configuration; pass allowDuplicate: true to create another"
            )

    def prepare_test(
        self, principal: Principal, webhook_id: UUID, *, use_sample_data: bool
    ) -> tuple[OutgoingRequest | None, list[str]]:
        """The request `sendTest` sends, built exactly as a delivery's; or the problems found first."""
        principal.require(Permission.MANAGE_WEBHOOKS)
        webhook = self._webhook(principal, webhook_id)
        spec = webhook.spec
        errors: list[str] = []
        sample: EventTypeSpec | None = None
        if use_sample_data:
            sample = next(
                (t for n in spec.event_types if (t := self._event_type(principal.organization_id, n))),
                None,
            )
            if sample is None:
                errors.append("none of the webhook's event types is defined, so there is no sample data")
        credential: Credential | None = None
        if spec.credential_id is not None:
            credential = self._credential(principal, spec.credential_id)
            if credential is None:
                errors.append("the webhook's credential no longer exists")
        parts, _ = split_target(spec.target_url)
        if parts is not None and parts.hostname:
            problem = literal_host_problem(parts.hostname, allow_private=self.allow_private_targets)
            errors += [problem.message] if problem else []
        if errors:
            return None, errors
        now = self.clock()
        message = Message(
            event_id=str(uuid4()),
            event_type=sample.name if sample else spec.event_types[0],
            occurred_at=now,
            organization_id=str(principal.organization_id),
            organization_name=principal.organization_name,
            payload=sample.sample_payload if sample else {},
        )
        try:
            request = build_request(
                SavedWebhook.of(webhook),
                message,
                secrets=webhook.signing_secrets(now),
                message_id=f"test_{uuid4().hex}",
                now=now,
                user_agent=self.user_agent,
                max_rendered_bytes=self.max_rendered_bytes,
                credential=credential,
                unreplaced=not use_sample_data,
            )
        except RenderedBodyTooLarge as error:
            return None, [str(error)]
        return request, []

    def create_credential(
        self, principal: Principal, name: str, kind: CredentialKind, parts: dict[str, str | None]
    ) -> Credential:
        principal.require(Permission.MANAGE_CREDENTIALS)
        problems = check_credential(name, kind, parts, self.clock())
        token_url = parts.get("tokenUrl")
        if token_url and not any(p.field == "tokenUrl" for p in problems):
            problems += self._resolved_target_problems(token_url, "tokenUrl")
        if problems:
            raise InvalidInput(problems)
        credential = Credential(
            organization_id=principal.organization_id,
            name=name,
            kind=kind.value,
            secret=credential_data(parts),
            actor=principal.actor,
        )
        self._save_and_catch_up(credential)
        return credential

    def credentials(self, principal: Principal) -> list[Credential]:
        principal.require(Permission.READ_CREDENTIALS)
        return self.views.credentials(principal.organization_id)

    def define_event_type(
        self, principal: Principal, name: str, description: str | None, sample_payload: Any
    ) -> EventTypeSpec:
        principal.require(Permission.DEFINE_EVENT_TYPES)
        problems = check_event_type(name, description, sample_payload)
        if problems:
            raise InvalidInput(problems)
        defined_id = EventType.create_id(principal.organization_id, name)
        existing = self._fresh(EventType, [defined_id]).get(defined_id)
        if existing is None:
            defined = EventType(
                organization_id=principal.organization_id,
                name=name,
                description=description,
                sample_payload=sample_payload,
                actor=principal.actor,
            )
        else:
            existing.redefine(description, sample_payload, actor=principal.actor)
            defined = existing
        try:
            self._save_and_catch_up(defined)
        except IntegrityError as error:
            raise Conflict("the event type was defined meanwhile; try again") from error
        return defined.spec

    def event_types(self, principal: Principal) -> list[EventTypeSpec]:
        principal.require(Permission.READ_EVENT_TYPES)
        own = [t.spec for t in self.views.event_types(principal.organization_id)]
        return [*BUILT_IN.values(), *sorted(own, key=lambda t: t.name)]
