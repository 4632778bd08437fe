"""What every part of the application shares: configuration, loading aggregates, saving them."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Mapper,
    Recording,
)
from eventsourcing.utils import Environment

from domain.built_in_types import BUILT_IN
from domain.catalogue import EventTypeSpec
from domain.credentials import Credential
from domain.deliveries import OwedDeliveries
from domain.errors import InvalidInput, NotFound, Problem
from domain.event_types import EventType
from domain.events import DEFAULT_MAX_PAYLOAD, Event
from domain.operations import DEFAULT_FAILING_THRESHOLDS
from domain.organizations import Organization
from domain.requests import Message
from domain.retry import RetryPolicy
from domain.roles import Principal
from domain.targets import IPAddress
from domain.templates import DEFAULT_MAX_RENDERED_BYTES
from domain.views import MAX_PAGE, Following, Views
from domain.webhooks import Webhook

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")
R = TypeVar("R")

EARLY = timedelta(milliseconds=50)  # an attempt this close to its time is not worth deferring
RECORD_TRIES = 3
RECOVERY_BATCH = 500

Resolve = Callable[[str], list[IPAddress]]
"""Resolves a host name to its addresses; raises LookupError when it cannot."""
Changes = Sequence[DomainEventProtocol[UUID]]
"""What one item of a batch saves: an aggregate's new events, or a few aggregates' that go together."""


@dataclass(frozen=True)
class Storage:
    """The event store as the composition root opened it: the application records through its
    recorder, and the read model, built before the application, follows the same one."""

    env: Environment
    factory: InfrastructureFactory
    mapper: Mapper[UUID]
    recorder: ApplicationRecorder


def all_or_each(
    run: Callable[[Sequence[T]], Sequence[R]],
    items: Sequence[T],
    catch: type[Exception] | tuple[type[Exception], ...] = Exception,
) -> list[R | Exception]:
    """`run` on all the items in one call; when that raises `catch` (one of them cannot be done), on
    each item alone, so that only the items that fail get their exception."""
    try:
        return list(run(items))
    except catch as error:
        if len(items) == 1:
            return [error]
        outcomes: list[R | Exception] = []
        for item in items:
            try:
                outcomes.extend(run([item]))
            except catch as alone:
                outcomes.append(alone)
        return outcomes


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
        failing_thresholds: Sequence[int] = DEFAULT_FAILING_THRESHOLDS,
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
        self.failing_thresholds = tuple(failing_thresholds)
        self._organization_names: dict[UUID, str] = {}
        self.owed = OwedDeliveries()
        self.saved_listeners: list[Callable[[list[Recording[UUID]]], None]] = []

    def save(
        self, *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None, **kwargs: Any
    ) -> list[Recording[UUID]]:
        """The library's `save`, less its runtime-protocol `isinstance` checks (two per saved
        aggregate, each slow on Python 3.11): here everything saved is an `Aggregate` or one of its
        domain events."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:  # a domain event (no `cast`: it costs a call for each)
                processing_event.events.append(obj)  # type: ignore[arg-type]
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

    def _fresh(self, cls: type[A], aggregate_ids: Iterable[UUID]) -> dict[UUID, A]:
        """Aggregates as the store has them now, read at once: for a change that must not be made
        on a state a moment old (a second send, a repeat, a lost update)."""
        return {i: a for i, a in self.views.stored(aggregate_ids).items() if isinstance(a, cls)}

    def _recent(
        self, cls: type[A], aggregate_ids: Sequence[UUID], *, held_only: bool = False
    ) -> dict[UUID, A]:
        """Aggregates as the read model has them (fast; possibly a moment behind the store), copied
        so they may be changed and saved: a stale one only loses the race on its version. What the
        read model lacks comes from the store. With `held_only`, only what this process holds in
        memory is taken from the read model (for aggregates just recorded, which its tables rarely
        have yet: one query to the store instead of a miss first)."""
        known: Mapping[UUID, object]
        if held_only:
            known = {i: state for i in aggregate_ids if (state := self.views.held(i)) is not None}
        else:
            known = self.views.states(aggregate_ids)
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
            found.update(self._fresh(cls, missing))
        return found

    def _save_and_catch_up(self, *aggregates: Aggregate | None) -> None:
        self.save(*aggregates)
        self.follower.catch_up()

    def _save_all_or_each(self, changes: Sequence[Changes]) -> list[bool]:
        """Saves every item's changes in one transaction, or, when one raced another writer, each
        item's on their own: which were saved (the changes of the others are dropped)."""
        if not changes:
            return []
        outcomes = all_or_each(self._save_together, changes, IntegrityError)
        return [not isinstance(outcome, IntegrityError) for outcome in outcomes]

    def _save_together(self, changes: Sequence[Changes]) -> list[None]:
        self.save(*(change for item in changes for change in item))
        return [None] * len(changes)

    def _webhook(self, principal: Principal, webhook_id: UUID) -> Webhook:
        webhook = self._fresh(Webhook, [webhook_id]).get(webhook_id)
        if webhook is None or webhook.organization_id != principal.organization_id or webhook.deleted:
            raise NotFound("no such webhook")
        return webhook

    def _credential(self, principal: Principal, credential_id: UUID) -> Credential | None:
        credential = self._fresh(Credential, [credential_id]).get(credential_id)
        if credential is None or credential.organization_id != principal.organization_id:
            return None
        return credential

    def _event_type(self, organization_id: UUID, name: str) -> EventTypeSpec | None:
        """A defined type: built in, or the organisation's own; None for a type nobody defined."""
        if name in BUILT_IN:
            return BUILT_IN[name]
        defined_id = EventType.create_id(organization_id, name)
        defined = self._fresh(EventType, [defined_id]).get(defined_id)
        return defined.spec if defined else None

    def _message(self, event: Event) -> Message:
        return Message(
            event_id=str(event.id),
            event_type=event.type,
            occurred_at=event.occurred_at,
            organization_id=str(event.organization_id),
            organization_name=self._organization_name(event.organization_id),
            payload=event.payload or {},  # (an erased event's deliveries are never prepared)
        )

    def _organization_name(self, organization_id: UUID) -> str:
        name = self._organization_names.get(organization_id)
        if name is None:
            organization = self._fresh(Organization, [organization_id]).get(organization_id)
            name = organization.name if organization else ""
            self._organization_names[organization_id] = name
        return name


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput([Problem("first", f"must be between 1 and {MAX_PAGE}")])
    return first


def urlsafe(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
