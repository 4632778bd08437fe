"""`eraseEvent`: an event's payload and its deliveries' bodies erased now, for good (right to erasure).

Its deliveries still PENDING or RETRYING are given up first (they end FAILED, "the event was erased"),
so that no erased body is ever sent; then the store rewrites the stored events (`Views.erase_events`,
`store.erasure`), and `Event.Erased` records who erased it and why (the audit log shows it with its
actor). A repeat finds the event erased and records nothing more.
"""

from __future__ import annotations

from contextlib import suppress
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.errors import InvalidInput, NotFound, Problem
from domain.events import Event
from domain.roles import Permission, Principal
from domain.service.delivery import ERASED, DeliveryCommands

MAX_REASON = 1000


class ErasureCommands(DeliveryCommands):
    def erase_event(self, principal: Principal, event_id: UUID, reason: str) -> bool:
        principal.require(Permission.ERASE_EVENTS)
        if not reason.strip():
            raise InvalidInput([Problem("reason", "must not be empty")])
        if len(reason) > MAX_REASON:
            raise InvalidInput([Problem("reason", f"must be at most {MAX_REASON} characters")])
        event = self._fresh(Event, [event_id]).get(event_id)
        if not isinstance(event, Event) or event.organization_id != principal.organization_id:
            raise NotFound("no such event")
        self.follower.catch_up()
        deliveries = self.current_deliveries(list(event.owed()))
        for delivery in deliveries.values():
            if not delivery.finished:
                delivery.abandon(ERASED)
                with suppress(IntegrityError):  # an attempt ended meanwhile: it is erased below
                    self.save(delivery)
        self.views.erase_events([event.id], self.clock())
        if event.erased_reason is None:
            event.erase(actor=principal.actor, reason=reason)
            self._save_and_catch_up(event)
        return True
