"""Events in: what source systems publish, each event recorded once however often it is sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.errors import HooklineError, InvalidInput, Problem
from domain.events import MAX_BATCH, Event, Publication, check_publication
from domain.roles import Permission, Principal
from domain.service.base import HooklineBase

Published = list[tuple[UUID, bool]]
"""A request's events: each one's id, and whether it repeats an earlier one."""


@dataclass(frozen=True)
class Publishing:
    """One caller's request to publish: a `publishEvents`' list of events, or a `publishEvent`'s one
    (`numbered` off: its problems are named as the event's own fields, not `input[0].…`)."""

    principal: Principal
    events: Sequence[Publication]
    numbered: bool = True


class PublishingCommands(HooklineBase):
    def publish(self, requests: Sequence[Publishing]) -> list[Published | HooklineError]:
        """Records the events of several callers' requests in one transaction. Each request is
        answered on its own: one that may not publish, or holds an invalid event, gets its error and
        stops none of the others. Each event has its own idempotency: a repeat, also within the
        batch, is reported as a duplicate and creates nothing."""
        now = self.clock()
        checked: list[list[Event] | HooklineError] = []
        for request in requests:
            try:
                checked.append(self._events_of(request, now))
            except HooklineError as error:
                checked.append(error)
        recorded = iter(
            self._record_events([e for c in checked if not isinstance(c, HooklineError) for e in c])
        )
        return [c if isinstance(c, HooklineError) else [next(recorded) for _ in c] for c in checked]

    def publish_events(self, principal: Principal, events: Sequence[Publication]) -> Published:
        """`publish` of one caller's request (`publishEvents`): its answer, or its error raised."""
        (answer,) = self.publish([Publishing(principal, events)])
        if isinstance(answer, HooklineError):
            raise answer
        return answer

    def _events_of(self, request: Publishing, now: datetime) -> list[Event]:
        """The request's events, once it may publish and all are valid (every problem at once)."""
        request.principal.require(Permission.PUBLISH_EVENTS)
        if not 1 <= len(request.events) <= MAX_BATCH:
            raise InvalidInput([Problem("input", f"must hold 1 to {MAX_BATCH} events")])
        problems = [
            problem
            for index, publication in enumerate(request.events)
            for problem in check_publication(
                publication, self.max_payload_bytes, prefix=f"input[{index}]." if request.numbered else ""
            )
        ]
        if problems:
            raise InvalidInput(problems)
        return [
            Event(
                organization_id=request.principal.organization_id,
                type=publication.type,
                payload=publication.payload,
                occurred_at=publication.occurred_at or now,
                idempotency_key=publication.idempotency_key,
                actor=request.principal.actor,
                trace_parent=publication.trace_parent,
            )
            for publication in request.events
        ]

    def _record_events(self, events: Sequence[Event]) -> Published:
        """Saves new events in one transaction; answers each with its id and whether it repeats an
        earlier one (by idempotency key: stored before, or earlier in `events`)."""
        keyed = [event.id for event in events if event.idempotency_key is not None]
        stored = self._fresh(Event, keyed) if keyed else {}
        new: dict[UUID, Event] = {}
        for event in events:
            if event.id not in new and event.id not in stored:
                new[event.id] = event
        # Saved as domain events, which a failed save leaves with us (it empties aggregates); when a
        # repeat raced us, one by one, so that each learns whether it is new.
        saved = self._save_all_or_each([event.collect_events() for event in new.values()])
        for event_id, was_saved in zip(list(new), saved, strict=True):
            if not was_saved:
                del new[event_id]
        return [(event.id, new.pop(event.id, None) is None) for event in events]
