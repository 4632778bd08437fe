"""What every part of the application shares: configuration, loading aggregates, saving them."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Mapper,
    Recording,
)
from eventsourcing.utils import Environment

from domain.catalogue import BUILT_IN, EventTypeSpec
from domain.credentials import Credential
from domain.deliveries import Delivery
from domain.errors import InvalidInput, NotFound, Problem
from domain.event_types import EventType
from domain.events import DEFAULT_MAX_PAYLOAD, Event
from domain.organizations import (
    Organization,
)
from domain.requests import Message, OutgoingRequest
from domain.retry import RetryPolicy
from domain.roles import Principal
from domain.targets import IPAddress
from domain.templates import DEFAULT_MAX_RENDERED_BYTES
from domain.views import MAX_PAGE, Following, Views
from domain.webhooks import Webhook

A = TypeVar("A", bound=Aggregate)

EARLY = timedelta(milliseconds=50)
RECORD_TRIES = 3
RECOVERY_BATCH = 500  # an attempt this close to its time is not worth deferring

Resolve = Callable[[str], list[IPAddress]]
"""Resolves a host name to its addresses; raises LookupError when it cannot."""


@dataclass(frozen=True)
class PreparedDelivery:
    delivery: Delivery
    request: OutgoingRequest
    webhook_id: UUID
    rate_limit_per_second: int | None


@dataclass(frozen=True)
class Storage:
    """The event store as the composition root opened it: the application records through its
    recorder, and the read model, built before the application, follows the same one."""

    env: Environment
    factory: InfrastructureFactory
    mapper: Mapper[UUID]
    recorder: ApplicationRecorder


# What preparing a delivery answers: the request to send, the time it is due (not yet), or None (done,
# or the job is obsolete).
Prepared = PreparedDelivery | datetime | None


class HooklineBase(Application[UUID]):
    def __init__(
        self,
        storage: Storage,
        views: Views,
        follower: Following,
        *,
        clock: Callable[[], datetime],
        random_bytes: Callable[[int], bytes],
        resolve: Resolve,
        allow_private_targets: bool = False,
        user_agent: str = "Hookline",
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        max_rendered_bytes: int = DEFAULT_MAX_RENDERED_BYTES,
        retry_policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - immutable
        rand: Callable[[], float] = lambda: 0.5,
    ) -> None:
        self._storage = storage
        super().__init__(storage.env)
        self.views = views
        self.follower = follower
        self.clock = clock
        self.random_bytes = random_bytes
        self.resolve = resolve
        self.allow_private_targets = allow_private_targets
        self.user_agent = user_agent
        self.max_payload_bytes = max_payload_bytes
        self.max_rendered_bytes = max_rendered_bytes
        self.retry_policy = retry_policy
        self.rand = rand
        self._organization_names: dict[UUID, str] = {}
        self.saved_listeners: list[Callable[[list[Recording[UUID]]], None]] = []

    def save(
        self, *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None, **kwargs: Any
    ) -> list[Recording[UUID]]:
        """The library's `save`, less its runtime-protocol `isinstance` checks, which cost 5 to 15 µs
        each on Python 3.11, two per saved aggregate: here everything saved is an `Aggregate` or one
        of its domain events."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:
                processing_event.events.append(cast(DomainEventProtocol[UUID], obj))
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for listener in self.saved_listeners:
            listener(recordings)

    # The library builds these from the settings; here they come from the storage already opened.
    def construct_factory(self, env: Environment) -> InfrastructureFactory:
        return self._storage.factory

    def construct_mapper(self) -> Mapper[UUID]:
        return self._storage.mapper

    def construct_recorder(self) -> ApplicationRecorder:
        return self._storage.recorder

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _get_many(self, cls: type[A], aggregate_ids: Sequence[UUID]) -> dict[UUID, A]:
        """`_get` for several aggregates, read from the store at once."""
        stored = self.views.stored(aggregate_ids)
        return {i: a for i, a in stored.items() if isinstance(a, cls)}

    def _current(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate as the read model holds it (fast; possibly a moment behind the store), to
        change and save: a stale one only loses the race on its version. Falls back to the store."""
        return self._current_many(cls, [aggregate_id]).get(aggregate_id)

    def _current_many(
        self, cls: type[A], aggregate_ids: Sequence[UUID], *, tables: bool = True
    ) -> dict[UUID, A]:
        """`_current` for several aggregates, read from the read model at once. Without `tables`, only
        what this process holds in memory is taken from the read model (for aggregates just recorded,
        which its tables rarely have yet: one query to the store instead of a miss first)."""
        if tables:
            known = self.views.states(aggregate_ids)
        else:
            known = {i: state for i in aggregate_ids if (state := self.views.held(i)) is not None}
        found: dict[UUID, A] = {}
        missing: list[UUID] = []
        for aggregate_id in aggregate_ids:
            state = known.get(aggregate_id)
            if isinstance(state, cls):
                detached = copy.copy(state)  # the read model's object stays as it is
                detached.__dict__["_pending_events"] = []
                found[aggregate_id] = detached
            else:
                missing.append(aggregate_id)
        if missing:  # not applied yet (just recorded, e.g. by another process): from the store at once
            found.update(self._get_many(cls, missing))
        return found

    def _save_and_catch_up(self, *aggregates: Aggregate | None) -> None:
        self.save(*aggregates)
        self.follower.catch_up()

    def _save_each_or_all(self, aggregates: Sequence[Aggregate]) -> int:
        """Saves all in one transaction, or, when one raced another writer, each on its own (the
        losers are dropped); returns how many were saved."""
        if not aggregates:
            return 0
        changes = [aggregate.collect_events() for aggregate in aggregates]
        try:
            self.save(*(change for batch in changes for change in batch))
            return len(aggregates)
        except IntegrityError:
            saved = 0
            for batch in changes:
                with suppress(IntegrityError):
                    self.save(*batch)
                    saved += 1
            return saved

    def _webhook(self, principal: Principal, webhook_id: UUID) -> Webhook:
        webhook = self._get(Webhook, webhook_id)
        if webhook is None or webhook.organization_id != principal.organization_id or webhook.deleted:
            raise NotFound("no such webhook")
        return webhook

    def _credential(self, principal: Principal, credential_id: UUID) -> Credential | None:
        credential = self._get(Credential, credential_id)
        if credential is None or credential.organization_id != principal.organization_id:
            return None
        return credential

    def _event_type(self, organization_id: UUID, name: str) -> EventTypeSpec | None:
        """A defined type: built in, or the organisation's own; None for a type nobody defined."""
        if name in BUILT_IN:
            return BUILT_IN[name]
        defined = self._get(EventType, EventType.create_id(organization_id, name))
        return defined.spec if defined else None

    def _message(self, event: Event) -> Message:
        return Message(
            event_id=str(event.id),
            event_type=event.type,
            occurred_at=event.occurred_at,
            organization_id=str(event.organization_id),
            organization_name=self._organization_name(event.organization_id),
            payload=event.payload,
        )

    def _organization_name(self, organization_id: UUID) -> str:
        name = self._organization_names.get(organization_id)
        if name is None:
            organization = self._get(Organization, organization_id)
            name = organization.name if organization else ""
            self._organization_names[organization_id] = name
        return name


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput([Problem("first", f"must be between 1 and {MAX_PAGE}")])
    return first


def urlsafe(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
