"""`eraseEvent`: an event's payload and its deliveries' bodies erased now, for good (right to erasure).

First `Event.Erased` records who erased it and why (the audit log shows it with its actor), which
makes its payload None for whoever loads it from then on: a fan-out after it owes nothing, a worker
preparing one of its deliveries gives it up. Then its deliveries still PENDING or RETRYING are given
up (they end FAILED, "the event was erased"), so that no erased body is ever sent, and the store
rewrites the stored events (`Views.erase_events`, `store.erasure`). A repeat records nothing more but
erases again (idempotent: it completes an erasure a crash interrupted).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.errors import Conflict, InvalidInput, NotFound, Problem
from domain.events import Event
from domain.roles import Permission, Principal
from domain.service.base import RECORD_TRIES
from domain.service.delivery import ERASED, DeliveryCommands

MAX_REASON = 1000


class ErasureCommands(DeliveryCommands):
    def erase_event(self, principal: Principal, event_id: UUID, reason: str) -> bool:
        principal.require(Permission.ERASE_EVENTS)
        if not reason.strip():
            raise InvalidInput([Problem("reason", "must not be empty")])
        if len(reason) > MAX_REASON:
            raise InvalidInput([Problem("reason", f"must be at most {MAX_REASON} characters")])
        event = self._erased_event(principal, event_id, reason)
        for _ in range(RECORD_TRIES):  # an attempt that ends meanwhile: the delivery is read again
            deliveries = self.current_deliveries(list(event.owed()))
            unfinished = [d for d in deliveries.values() if not d.finished]
            for delivery in unfinished:
                delivery.abandon(ERASED)
            if not unfinished or sum(self._save_all_or_each([d.collect_events() for d in unfinished])) == len(
                unfinished
            ):
                break
        self.views.erase_events([event.id], self.clock())
        self.follower.catch_up()
        return True

    def _erased_event(self, principal: Principal, event_id: UUID, reason: str) -> Event:
        """The event with `Event.Erased` recorded (first: a fan-out after it owes nothing, and one
        that read the event before conflicts and reads it again)."""
        for _ in range(RECORD_TRIES):
            event = self._fresh(Event, [event_id]).get(event_id)
            if not isinstance(event, Event) or event.organization_id != principal.organization_id:
                raise NotFound("no such event")
            if event.erased_reason is not None:
                return event
            event.erase(actor=principal.actor, reason=reason)
            try:
                self.save(event)
                return event
            except IntegrityError:  # fanned out meanwhile
                continue
        raise Conflict("the event changed meanwhile; try again")
