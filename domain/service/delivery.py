"""Deliveries out: fan out, prepare the request, record the attempt, retry, recover and replay.

Each command of the data plane takes a batch (a single item is a batch of one): the jobs that run at
once share its reads and its transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from domain.credentials import Credential
from domain.deliveries import Attempt, Delivery, DeliveryStatus, due_key
from domain.errors import Conflict, InvalidInput, NotFound, Problem, RenderedBodyTooLarge
from domain.events import Event
from domain.operations import about_webhook
from domain.requests import OutgoingRequest, build_request
from domain.retry import GONE
from domain.roles import Permission, Principal
from domain.service.base import EARLY, RECORD_TRIES, RECOVERY_BATCH, page_size
from domain.service.operations import OperatorEvents
from domain.views import Page
from domain.webhooks import SavedWebhook, Webhook, compiled_filters


@dataclass(frozen=True)
class PreparedDelivery:
    """The request to send now for a delivery's next attempt."""

    delivery: Delivery
    request: OutgoingRequest
    webhook_id: UUID
    rate_limit_per_second: int | None
    trace_parent: str | None = None  # the publish's W3C traceparent, which the attempt continues


@dataclass(frozen=True)
class NotDue:
    """The delivery's next attempt is due later (an early or repeated job): when."""

    at: datetime


@dataclass(frozen=True)
class NothingToSend:
    """The delivery is finished (or now abandoned), waits for its ordered webhook's turn, or the job
    was queued for another attempt time than the delivery's current one."""


NOTHING_TO_SEND = NothingToSend()
ERASED = "the event was erased"
Prepared = PreparedDelivery | NotDue | NothingToSend
"""What preparing a delivery's next attempt answers."""


class DeliveryCommands(OperatorEvents):
    def fan_out_many(self, event_ids: Sequence[UUID]) -> list[list[UUID]]:
        """Records, for several events in one transaction, the deliveries each owes: one for each
        active webhook that subscribes to it and whose filters match (its id derived from both); the
        deliveries owed, by event. Nothing is stored for a delivery until its first attempt ends.

        Done once: a rerun finds the event fanned out, or loses the race on its version. The events
        are read together, and an organisation's subscribers to a type once per batch."""
        events = self._recent(Event, event_ids, held_only=True)  # just recorded: rarely in tables yet
        subscribed = functools.cache(self.views.subscribed_webhooks)
        going = [
            event
            for i in dict.fromkeys(event_ids)
            if (event := events.get(i)) is not None and self._plan_fan_out(event, subscribed)
        ]
        made: dict[UUID, list[UUID]] = {}
        saved_all = self._save_all_or_each([event.collect_events() for event in going])
        for event, saved in zip(going, saved_all, strict=True):
            # One that raced another writer is read again from the store and tried again.
            made[event.id] = self._owe(event) if saved else self._fan_out_fresh(event.id)
        return [made.get(event_id, []) for event_id in event_ids]

    def _fan_out_fresh(self, event_id: UUID) -> list[UUID]:
        """Fans one event out from its state in the store, trying again when it races another writer."""
        for _ in range(RECORD_TRIES):
            event = self._fresh(Event, [event_id]).get(event_id)
            if event is None or not self._plan_fan_out(event, self.views.subscribed_webhooks):
                return []
            try:
                self.save(event)
                return self._owe(event)
            except IntegrityError:
                continue  # raced another fan-out: read again
        return []

    def _plan_fan_out(self, event: Event, subscribed: Callable[[UUID, str], list[SavedWebhook]]) -> bool:
        """Marks an event not fanned out yet fanned out to the webhooks that take it; else False."""
        if event.fanned_out:
            return False
        about = about_webhook(event)  # an operator event never goes to the webhook it is about
        payload = event.payload  # None: erased, it goes nowhere
        event.fan_out(
            [
                (webhook.id, webhook.version)
                for webhook in subscribed(event.organization_id, event.type)
                if webhook.id != about and payload is not None and webhook.filters.matches(payload)
            ]
        )
        return True

    def _owe(self, event: Event) -> list[UUID]:
        """The deliveries a fanned-out event owes, remembered for their first attempt."""
        owed = list(event.owed())
        self.owed.remember(owed, event)
        return owed

    def prepare_deliveries(self, jobs: Sequence[tuple[UUID, int | None]]) -> list[Prepared]:
        """The request to send next for each (delivery, due) job, or why there is none now.

        A job queued for another due time than the delivery's current one (`due_key`) is obsolete,
        so that a late copy of a job that already ran never sends that attempt again. The deliveries
        come from the store itself (their versions guard against a second send), those only owed
        from their events (`_owed`); their webhooks and events, which only need to be recent, from
        the read model, all at once."""
        now = self.clock()
        wanted = [delivery_id for delivery_id, _ in jobs]
        deliveries = self._fresh(Delivery, wanted)
        owed, found = self._owed([i for i in wanted if i not in deliveries])
        deliveries.update(owed)
        going = [delivery for delivery in deliveries.values() if not delivery.finished]
        needed = dict.fromkeys(i for d in going for i in (d.webhook_id, d.event_id) if i not in found)
        found.update(self._recent(Aggregate, list(needed)))
        saved = {i: self.views.saved(w) for i, w in found.items() if isinstance(w, Webhook)}
        return [self._prepare(deliveries.get(i), due, found, saved, now) for i, due in jobs]

    def current_deliveries(self, delivery_ids: Sequence[UUID]) -> dict[UUID, Delivery]:
        """Deliveries as the store has them now (their versions guard against a second send), and
        those that nothing about is stored yet as their events' fan-outs owe them."""
        found = self._fresh(Delivery, delivery_ids)
        found.update(self._owed([i for i in delivery_ids if i not in found])[0])
        return found

    def _owed(self, delivery_ids: Sequence[UUID]) -> tuple[dict[UUID, Delivery], dict[UUID, Aggregate]]:
        """Deliveries that nothing about is stored yet, as their events' fan-outs owe them (and those
        events, by id): the event of each remembered here, else from the read model's rows of owed
        deliveries."""
        if not delivery_ids:
            return {}, {}
        owing = self.owed.owing(delivery_ids)
        unknown = [i for i in delivery_ids if i not in owing]
        if unknown:
            owing.update(self.views.owed_by(unknown))
        events: dict[UUID, Aggregate] = {e.id: e for e in owing.values() if isinstance(e, Event)}
        named = list({e for e in owing.values() if isinstance(e, UUID) and e not in events})
        if named:
            read = self._recent(Event, named)
            behind = [i for i, event in read.items() if not event.fanned_out]
            if behind:  # the read model has it as it was before its fan-out
                read.update(self._fresh(Event, behind))
            events.update(read)
        deliveries: dict[UUID, Delivery] = {}
        owed_by_event: dict[UUID, dict[UUID, UUID]] = {}  # each event's webhooks by delivery
        for delivery_id, owner in owing.items():
            event = events.get(owner if isinstance(owner, UUID) else owner.id)
            if not isinstance(event, Event):
                continue
            owed = owed_by_event.get(event.id)
            if owed is None:
                owed = owed_by_event[event.id] = event.owed()
            if (webhook_id := owed.get(delivery_id)) is not None:
                deliveries[delivery_id] = Delivery.owed(event, webhook_id, delivery_id)
        return deliveries, events

    def _prepare(
        self,
        delivery: Delivery | None,
        due: int | None,
        found: dict[UUID, Aggregate],
        saved: dict[UUID, SavedWebhook],
        now: datetime,
    ) -> Prepared:
        if delivery is None or delivery.finished:
            return NOTHING_TO_SEND
        if due is not None and due != due_key(delivery.next_attempt_at):
            return NOTHING_TO_SEND
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY:
            return NotDue(delivery.next_attempt_at)
        webhook, event = found.get(delivery.webhook_id), found.get(delivery.event_id)
        if (
            not isinstance(webhook, Webhook)
            or not isinstance(event, Event)
            or webhook.deleted
            or not webhook.active
            or event.erased
        ):
            gone = not isinstance(webhook, Webhook) or webhook.deleted
            erased = isinstance(event, Event) and event.erased  # never send an erased body
            delivery.abandon(
                ERASED if erased else "the webhook was deleted" if gone else "the webhook is inactive"
            )
            with suppress(IntegrityError):
                self.save(delivery)
            return NOTHING_TO_SEND
        spec = saved[webhook.id].spec
        if spec.ordered:  # one at a time, in event order: only the head goes
            head = self.views.ordered_head(webhook.id)
            if head is None or head[0] != delivery.id:
                return NOTHING_TO_SEND  # the dispatcher queues it again when its turn comes
        credential: Credential | None = None
        if spec.credential_id is not None:
            found_credential = self._recent(Credential, [spec.credential_id]).get(spec.credential_id)
            if found_credential is not None and found_credential.organization_id == webhook.organization_id:
                credential = found_credential
        try:
            request = build_request(
                saved[webhook.id],
                self._message(event),
                secrets=webhook.signing_secrets(now),
                message_id=str(delivery.id),
                now=now,
                user_agent=self.user_agent,
                max_rendered_bytes=self.max_rendered_bytes,
                credential=credential,
            )
        except RenderedBodyTooLarge as error:
            # The same template and event render the same way every time: a retry cannot succeed.
            unmade = self._unmade(delivery, str(error), now)
            delivery.record_attempt(unmade, next_attempt_at=None)
            changes = [*delivery.collect_events(), *self._ended(delivery)]
            self._save_counted([changes], [(delivery, unmade)])  # lost a race: its next job decides
            return NOTHING_TO_SEND
        return PreparedDelivery(delivery, request, webhook.id, spec.rate_limit_per_second, event.trace_parent)

    def record_attempts(self, attempts: Sequence[tuple[Delivery, Attempt]]) -> None:
        """Records attempts' outcomes in one transaction, each with when to try again; 410 Gone also
        switches the webhook off. A delivery that changed meanwhile (another worker, a redelivery) is
        read again and its attempt recorded after what is there, unless it has finished since.

        Each webhook's streak of failed attempts is counted with them (`_save_counted`)."""
        pending = list(attempts)
        for _ in range(RECORD_TRIES):
            plans = [self._plan_attempt(d, a) for d, a in pending]
            saved = self._save_counted(plans, pending)
            lost = [(d, a) for (d, a), was_saved in zip(pending, saved, strict=True) if not was_saved]
            fresh = self._fresh(Delivery, [d.id for d, _ in lost]) if lost else {}
            pending = [
                (current, replace(attempt, number=current.next_attempt_number))
                for delivery, attempt in lost
                if (current := fresh.get(delivery.id)) is not None and not current.finished
            ]
            if not pending:
                return

    def record_unmade_attempt(self, delivery_id: UUID, error: str) -> None:
        """Records an attempt whose request could not even be made (preparing it raised) as a failed
        attempt with that error, so that the delivery follows its retry schedule and ends, instead
        of its job failing again and again."""
        delivery = self.current_deliveries([delivery_id]).get(delivery_id)
        if delivery is not None and not delivery.finished:
            self.record_attempts([(delivery, self._unmade(delivery, error, self.clock()))])

    def _unmade(self, delivery: Delivery, error: str, now: datetime) -> Attempt:
        """An attempt that sent nothing, with the error that kept it from being made."""
        return Attempt(delivery.next_attempt_number, now, 0.0, None, error, None)

    def _plan_attempt(self, delivery: Delivery, attempt: Attempt) -> list[DomainEventProtocol[UUID]]:
        """The events that record an attempt (and, on 410 Gone, switch its webhook off)."""
        next_attempt_at = (
            None
            if attempt.succeeded
            else self.retry_policy.next_attempt_at(
                attempt.number, attempt.status_code, attempt.retry_after, self.clock(), self.rand()
            )
        )
        if delivery.unrecorded:  # its first attempt creates it: one stored event
            delivery = delivery.attempted(attempt, next_attempt_at)
        else:
            delivery.record_attempt(attempt, next_attempt_at)
        changes: list[DomainEventProtocol[UUID]] = [*delivery.collect_events(), *self._ended(delivery)]
        if attempt.status_code == GONE:
            webhook = self._fresh(Webhook, [delivery.webhook_id]).get(delivery.webhook_id)
            if webhook is not None and not webhook.deleted and webhook.active:
                changes.extend(self._disable(webhook, "gone"))
        return changes

    def redeliver(self, principal: Principal, delivery_id: UUID) -> Delivery:
        principal.require(Permission.MANAGE_DELIVERIES)
        delivery = self.current_deliveries([delivery_id]).get(delivery_id)
        if delivery is None or delivery.organization_id != principal.organization_id:
            raise NotFound("no such delivery")
        event = self._fresh(Event, [delivery.event_id]).get(delivery.event_id)
        if isinstance(event, Event) and event.erased:
            raise Conflict("the delivery's event was erased: its payload can no longer be sent")
        delivery.redeliver(actor=principal.actor, now=self.clock())
        try:
            self._save_and_catch_up(delivery)
        except IntegrityError as error:
            raise Conflict("the delivery changed meanwhile; try again") from error
        return delivery

    def recover_deliveries(self, principal: Principal, webhook_id: UUID, since: datetime) -> int:
        """Every FAILED delivery of the webhook created since then gets one more attempt (same
        `webhook-id`). A second call meanwhile finds them no longer failed: nothing is sent twice."""
        principal.require(Permission.MANAGE_DELIVERIES)
        webhook = self._webhook(principal, webhook_id)
        self.follower.catch_up()
        recovered = 0
        now = self.clock()
        failed = self.views.failed_deliveries(webhook.id, since)
        for start in range(0, len(failed), RECOVERY_BATCH):
            chunk = failed[start : start + RECOVERY_BATCH]
            stored = self._fresh(Delivery, chunk)
            deliveries = [
                d for i in chunk if (d := stored.get(i)) is not None and d.status == DeliveryStatus.FAILED
            ]
            events = self._recent(Event, list({d.event_id for d in deliveries}))
            deliveries = [d for d in deliveries if not getattr(events.get(d.event_id), "erased", False)]
            for delivery in deliveries:
                delivery.redeliver(actor=principal.actor, now=now)
            recovered += sum(self._save_all_or_each([d.collect_events() for d in deliveries]))
        self.follower.catch_up()
        return recovered

    def replay_events(
        self, principal: Principal, webhook_id: UUID, start: datetime, end: datetime | None
    ) -> int:
        """Events of the window that the webhook subscribes to and whose filters match now, and that
        it never had a delivery for, become deliveries. Derived ids make a second call create none;
        the window is read page by page, so its size does not matter."""
        principal.require(Permission.MANAGE_DELIVERIES)
        webhook = self._webhook(principal, webhook_id)
        if not webhook.active:
            raise Conflict("the webhook is inactive; activate it, then replay what it missed")
        if end is not None and end < start:
            raise InvalidInput([Problem("to", "must not be before from")])
        self.follower.catch_up()
        spec = webhook.spec
        matches = compiled_filters(spec)
        created = 0
        position = 0
        while True:
            page = self.views.events_between(
                webhook.organization_id, list(set(spec.event_types)), start, end, position, RECOVERY_BATCH
            )
            if not page:
                break
            position = page[-1][1]
            wanted = {Delivery.create_id(event_id, webhook.id): event_id for event_id, _ in page}
            existing = self.views.existing_deliveries(list(wanted))
            events = self._recent(Event, [wanted[d] for d in wanted if d not in existing])
            deliveries = [
                Delivery.for_event(event, webhook.id)
                for event in events.values()
                if event.payload is not None and matches.matches(event.payload)  # erased: skipped
            ]
            created += sum(self._save_all_or_each([d.collect_events() for d in deliveries]))
        self.follower.catch_up()
        return created

    def disable_failing_webhooks(self, failing_for: timedelta) -> int:
        """Switches off (as `system`, reason "failing") every webhook whose deliveries have all
        failed for that long; returns how many. One changed meanwhile is left to the next check."""
        webhooks = self._fresh(Webhook, self.views.failing_webhooks(self.clock() - failing_for))
        going = [webhook for webhook in webhooks.values() if not webhook.deleted and webhook.active]
        return sum(self._save_all_or_each([self._disable(webhook, "failing") for webhook in going]))

    def delivery(self, principal: Principal, delivery_id: UUID) -> Delivery | None:
        principal.require(Permission.READ_DELIVERIES)
        return self.views.delivery(principal.organization_id, delivery_id)

    def deliveries(
        self,
        principal: Principal,
        *,
        webhook_id: UUID | None,
        event_id: UUID | None,
        status: str | None,
        first: int,
        after: str | None,
    ) -> Page[Delivery]:
        principal.require(Permission.READ_DELIVERIES)
        return self.views.deliveries(
            principal.organization_id,
            webhook_id=webhook_id,
            event_id=event_id,
            status=status,
            first=page_size(first),
            after=after,
        )
