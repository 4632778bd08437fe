"""From the store to the queue: what the log says happened becomes the jobs that must follow.

What a process creates (a published event, the deliveries of a fan-out or a replay) is queued by that
process as soon as it is committed (`recorded`, a save listener), not when the log follower gets to it:
the follower may be a backlog behind, and in distributed mode it runs in `serve`, not where a fan-out
happened. The dispatcher also listens to the log follower, for what follows from later events (a retry,
a redelivery, an ordered webhook's next head). `recover` re-reads the store at start and for every
sweep, so what was committed and never queued (a crash or a Redis outage just after the commit) is
queued again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import structlog
from eventsourcing.persistence import Recording

from domain import ids
from domain.deliveries import Delivery
from domain.events import Event
from domain.views import SweepViews
from domain.webhooks import Webhook

log = structlog.get_logger("hookline.dispatch")

PUBLISHED: type = getattr(Event, "Published")  # noqa: B009 - the class @event("Published") made
FANNED_OUT: type = getattr(Event, "FannedOut")  # noqa: B009 - likewise


class JobQueue(Protocol):
    def fan_out(self, event_id: UUID, trace_parent: str | None = None) -> None: ...

    def deliver(self, delivery_id: UUID, at: datetime | None = None, owed_by: UUID | None = None) -> None:
        """Queues a delivery's attempt; `owed_by`, the event whose fan-out owes it, when nothing
        about it is stored yet (so that whichever process runs the job can build it at once)."""


class Dispatcher:
    def __init__(self, queue: JobQueue, views: SweepViews) -> None:
        self.queue = queue
        self.views = views

    def recorded(self, recordings: Sequence[Recording[UUID]]) -> None:
        """Told by the application after each save in this process: a new event gets its fan-out job,
        the deliveries a fan-out owes and a new delivery their first attempts' (an ordered webhook's
        wait for their turn, which the log follower's call gives). Never raises: the save it
        follows is committed."""
        try:
            created = [r.domain_event for r in recordings]
            owed: list[tuple[UUID, UUID, UUID | None]] = []  # delivery, webhook, owing event
            for e in created:
                if isinstance(e, PUBLISHED):
                    self.queue.fan_out(e.originator_id, getattr(e, "trace_parent", None))
                elif isinstance(e, FANNED_OUT):
                    event_id: UUID = e.originator_id
                    webhooks: list[UUID] = getattr(e, "webhook_ids")  # noqa: B009 - FannedOut has them
                    owed.extend((ids.delivery_id(event_id, w), w, event_id) for w in webhooks)
                elif isinstance(e, Delivery.Created):
                    owed.append((e.originator_id, getattr(e, "webhook_id"), None))  # noqa: B009
            if owed:
                ordered = self._ordered({webhook_id for _, webhook_id, _ in owed})
                for delivery_id, webhook_id, owed_by in owed:
                    if webhook_id not in ordered:
                        self.queue.deliver(delivery_id, None, owed_by)
        except Exception:
            log.exception("could not queue what was just recorded; the sweeper will")

    def _ordered(self, webhook_ids: set[UUID]) -> set[UUID]:
        webhooks = self.views.states(webhook_ids)
        return {i for i, w in webhooks.items() if isinstance(w, Webhook) and self.views.saved(w).spec.ordered}

    def __call__(self, observed: Sequence[tuple[int, object]]) -> None:
        """Each delivery that, after an attempt or a redelivery, still needs work gets a job (what was
        owed or created was queued by the process that recorded it, see `recorded`); for an ordered
        webhook, only its head delivery (the next in event order) does, whatever happened."""
        touched: set[UUID] = set()
        created: set[UUID] = set()
        owing: set[UUID] = set()  # webhooks that events were fanned out to
        for _, e in observed:
            if isinstance(e, Delivery.Event):
                (created if isinstance(e, Delivery.Created) else touched).add(e.originator_id)
            elif isinstance(e, FANNED_OUT):
                owing.update(getattr(e, "webhook_ids"))  # noqa: B009
        states = self.views.states(touched | created)
        deliveries = [s for s in states.values() if isinstance(s, Delivery)]
        ordered = self._ordered({d.webhook_id for d in deliveries} | owing)
        heads: set[UUID] = owing & ordered
        for delivery in deliveries:
            if delivery.webhook_id in ordered:
                heads.add(delivery.webhook_id)
            elif delivery.id in touched and not delivery.finished:
                self.queue.deliver(delivery.id, delivery.next_attempt_at)
        for webhook_id in heads:
            head = self.views.ordered_head(webhook_id)
            if head is not None:
                self.queue.deliver(*head)

    def recover(self, due_before: datetime | None = None) -> None:
        """Queue again every event not fanned out and every unfinished delivery (due before a time)."""
        views = self.views
        for event_id in views.events_not_fanned_out():
            self.queue.fan_out(event_id)
        for delivery_id, next_attempt_at in views.unfinished_deliveries(due_before):
            self.queue.deliver(delivery_id, next_attempt_at)
        for webhook_id in views.ordered_webhooks_with_work():
            head = views.ordered_head(webhook_id)
            if head is not None and (due_before is None or head[1] is None or head[1] <= due_before):
                self.queue.deliver(*head)
