"""From the store to the queue: what the log says happened becomes the jobs that must follow.

The dispatcher listens to the log follower; `recover` re-reads the store at start, so an event or a
delivery recorded before a crash, and never finished, is queued again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.deliveries import Delivery
from domain.events import Event
from domain.views import Views
from domain.webhooks import Webhook


class JobQueue(Protocol):
    def fan_out(self, event_id: UUID) -> None: ...

    def deliver(self, delivery_id: UUID, at: datetime | None = None) -> None: ...


class Dispatcher:
    def __init__(self, queue: JobQueue, views: Views) -> None:
        self.queue = queue
        self.views = views

    def __call__(self, observed: Sequence[tuple[int, object]]) -> None:
        """Each event or delivery that, as it now stands, still needs work gets a job; for an
        ordered webhook, only its head delivery (the next in event order) does."""
        touched = {
            getattr(e, "originator_id")  # noqa: B009 - every domain event has one
            for _, e in observed
            if isinstance(e, Event.Event | Delivery.Event)
        }
        states = self.views.states(touched)
        deliveries = [s for s in states.values() if isinstance(s, Delivery)]
        webhooks = self.views.states({d.webhook_id for d in deliveries})
        ordered: set[UUID] = set()
        for state in states.values():
            if isinstance(state, Event) and not state.fanned_out:
                self.queue.fan_out(state.id)
        for delivery in deliveries:
            webhook = webhooks.get(delivery.webhook_id)
            if isinstance(webhook, Webhook) and webhook.spec.ordered:
                ordered.add(webhook.id)
            elif not delivery.finished:
                self.queue.deliver(delivery.id, delivery.next_attempt_at)
        for webhook_id in ordered:
            head = self.views.ordered_head(webhook_id)
            if head is not None:
                self.queue.deliver(*head)

    def recover(self, views: Views, due_before: datetime | None = None) -> None:
        """Queue again every event not fanned out and every unfinished delivery (due before a time)."""
        for event_id in views.events_not_fanned_out():
            self.queue.fan_out(event_id)
        for delivery_id, next_attempt_at in views.unfinished_deliveries(due_before):
            self.queue.deliver(delivery_id, next_attempt_at)
        for webhook_id in views.ordered_webhooks_with_work():
            head = views.ordered_head(webhook_id)
            if head is not None and (due_before is None or head[1] is None or head[1] <= due_before):
                self.queue.deliver(*head)
