"""Events in, deliveries out: publish, fan out, attempt, record, retry, recover and replay."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.credentials import Credential
from domain.deliveries import Attempt, Delivery, DeliveryStatus, due_key
from domain.errors import Conflict, HooklineError, InvalidInput, NotFound, Problem, RenderedBodyTooLarge
from domain.events import MAX_BATCH, Event, Publication, check_publication
from domain.requests import build_request
from domain.retry import GONE
from domain.roles import SYSTEM_ACTOR, Permission, Principal
from domain.service.base import (
    EARLY,
    RECORD_TRIES,
    RECOVERY_BATCH,
    HooklineBase,
    Prepared,
    PreparedDelivery,
    page_size,
)
from domain.views import Page
from domain.webhooks import Webhook, compiled_filters, saved_filters, saved_spec


class DeliveryCommands(HooklineBase):
    def publish_events(self, principal: Principal, events: Sequence[Publication]) -> list[tuple[UUID, bool]]:
        """Records events in one transaction; each with its own idempotency (a repeat is reported
        as a duplicate, also within the batch, and creates nothing)."""
        principal.require(Permission.PUBLISH_EVENTS)
        if not 1 <= len(events) <= MAX_BATCH:
            raise InvalidInput([Problem("input", f"must hold 1 to {MAX_BATCH} events")])
        problems = [
            problem
            for index, event in enumerate(events)
            for problem in check_publication(event, self.max_payload_bytes, prefix=f"input[{index}].")
        ]
        if problems:
            raise InvalidInput(problems)
        now = self.clock()
        return self._record_events([self._event_of(principal, event, now) for event in events])

    def publish_each(
        self, publications: Sequence[tuple[Principal, Publication]]
    ) -> list[tuple[UUID, bool] | HooklineError]:
        """Single events of several callers (a `publishEvent` each) recorded in one transaction.

        Each is answered on its own: one that may not be published, or is invalid, gets its error
        and stops none of the others."""
        now = self.clock()
        answers: list[Event | HooklineError] = []
        for principal, publication in publications:
            try:
                principal.require(Permission.PUBLISH_EVENTS)
                if problems := list(check_publication(publication, self.max_payload_bytes)):
                    raise InvalidInput(problems)
            except HooklineError as error:
                answers.append(error)
                continue
            answers.append(self._event_of(principal, publication, now))
        recorded = iter(self._record_events([a for a in answers if isinstance(a, Event)]))
        return [a if isinstance(a, HooklineError) else next(recorded) for a in answers]

    def _record_events(self, recorded: Sequence[Event]) -> list[tuple[UUID, bool]]:
        """Saves new events in one transaction; answers each with its id and whether it repeats an
        earlier one (by idempotency key: stored before, or earlier in `recorded`)."""
        new: dict[UUID, Event] = {}
        for event in recorded:
            keyed = event.idempotency_key is not None
            if event.id not in new and not (keyed and self._get(Event, event.id) is not None):
                new[event.id] = event
        # Saved as domain events, which a failed save leaves with us (it empties aggregates).
        changes = {event_id: event.collect_events() for event_id, event in new.items()}
        try:
            if changes:
                self.save(*(change for event_changes in changes.values() for change in event_changes))
        except IntegrityError:
            # A repeat raced us: record one by one, so that each learns whether it is new.
            for event_id, event_changes in changes.items():
                try:
                    self.save(*event_changes)
                except IntegrityError:
                    del new[event_id]
        return [(event.id, new.pop(event.id, None) is None) for event in recorded]

    def _event_of(self, principal: Principal, publication: Publication, now: datetime) -> Event:
        return Event(
            organization_id=principal.organization_id,
            type=publication.type,
            payload=publication.payload,
            occurred_at=publication.occurred_at or now,
            idempotency_key=publication.idempotency_key,
            actor=principal.actor,
        )

    def fan_out(self, event_id: UUID) -> list[UUID]:
        """One delivery for each active webhook that subscribes to the event and whose filters match.

        Done once: a rerun finds the event fanned out, or loses the race on its version. A delivery
        that already exists (a replay made it first) is kept and not made again.
        """
        for _ in range(RECORD_TRIES):
            event = self._get(Event, event_id)
            deliveries = self._plan_fan_out(event, self.views.subscribed_webhooks)
            if event is None or deliveries is None:
                return []
            deliveries = [d for d in deliveries if self._get(Delivery, d.id) is None]
            try:
                self.save(event, *deliveries)
                return [d.id for d in deliveries]
            except IntegrityError:
                continue  # raced another fan-out or a replay: read again
        return []

    def fan_out_many(self, event_ids: Sequence[UUID]) -> list[list[UUID]]:
        """Fans several events out in one transaction (one by one if any of them raced another).

        The events are read together, and an organisation's subscribers to a type once per batch."""
        events = self._current_many(Event, event_ids, tables=False)  # just recorded: rarely there yet
        subscribed = functools.cache(self.views.subscribed_webhooks)
        planned = {i: self._plan_fan_out(events.get(i), subscribed) for i in dict.fromkeys(event_ids)}
        aggregates = [
            aggregate
            for event_id, deliveries in planned.items()
            if deliveries is not None
            for aggregate in (events[event_id], *deliveries)
        ]
        try:
            self.save(*aggregates)
        except IntegrityError:  # one of them raced another writer: each on its own, from the store
            return [self.fan_out(event_id) for event_id in event_ids]
        return [[d.id for d in planned[event_id] or []] for event_id in event_ids]

    def _plan_fan_out(
        self, event: Event | None, subscribed: Callable[[UUID, str], list[Webhook]]
    ) -> list[Delivery] | None:
        """The deliveries of an event not fanned out yet, which is marked fanned out; else None."""
        if event is None or event.fanned_out:
            return None
        webhooks = [
            webhook
            for webhook in subscribed(event.organization_id, event.type)
            if saved_filters(webhook).matches(event.payload)
        ]
        deliveries = [
            Delivery(
                event_id=event.id,
                webhook_id=webhook.id,
                organization_id=event.organization_id,
                event_type=event.type,
            )
            for webhook in webhooks
        ]
        event.fan_out([d.webhook_id for d in deliveries])
        return deliveries

    def prepare_delivery(self, delivery_id: UUID, due: int | None = None) -> Prepared:
        """The request to send next for a delivery; the time it is due, when that is later; or None.

        A job queued for another due time than the delivery's current one (`due_key`) is obsolete:
        None, so that a late copy of a job that already ran never sends that attempt again."""
        return self.prepare_deliveries([(delivery_id, due)])[0]

    def prepare_deliveries(self, jobs: Sequence[tuple[UUID, int | None]]) -> list[Prepared]:
        """`prepare_delivery` for several (delivery, due) jobs: their webhooks and events are read
        from the read model at once."""
        now = self.clock()
        # The deliveries come from the store itself (their versions guard against a second send);
        # the rest, which only needs to be recent, from the read model.
        stored = self._get_many(Delivery, [delivery_id for delivery_id, _ in jobs])
        deliveries = [stored.get(delivery_id) for delivery_id, _ in jobs]
        going = [delivery for delivery in deliveries if delivery is not None and not delivery.finished]
        found = self._current_many(
            Aggregate, list(dict.fromkeys(i for d in going for i in (d.webhook_id, d.event_id)))
        )
        return [
            self._prepare(delivery, due, found, now)
            for delivery, (_, due) in zip(deliveries, jobs, strict=True)
        ]

    def _prepare(
        self, delivery: Delivery | None, due: int | None, found: dict[UUID, Aggregate], now: datetime
    ) -> Prepared:
        if delivery is None or delivery.finished:
            return None
        if due is not None and due != due_key(delivery.next_attempt_at):
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY:
            return delivery.next_attempt_at
        webhook, event = found.get(delivery.webhook_id), found.get(delivery.event_id)
        if (
            not isinstance(webhook, Webhook)
            or not isinstance(event, Event)
            or webhook.deleted
            or not webhook.active
        ):
            delivery.abandon(
                "the webhook was deleted"
                if not isinstance(webhook, Webhook) or webhook.deleted
                else "the webhook is inactive"
            )
            with suppress(IntegrityError):
                self.save(delivery)
            return None
        spec = saved_spec(webhook)  # (a saved state: the read model's or the store's)
        if spec.ordered:  # one at a time, in event order: only the head goes
            head = self.views.ordered_head(webhook.id)
            if head is None or head[0] != delivery.id:
                return None  # the dispatcher queues it again when its turn comes
        credential_headers: dict[str, str] = {}
        if spec.credential_id is not None:
            credential = self._current(Credential, spec.credential_id)
            if credential is not None and credential.organization_id == webhook.organization_id:
                credential_headers = credential.headers()
        try:
            request = build_request(
                spec,
                self._message(event),
                secrets=webhook.signing_secrets(now),
                message_id=str(delivery.id),
                now=now,
                user_agent=self.user_agent,
                max_rendered_bytes=self.max_rendered_bytes,
                credential_headers=credential_headers,
            )
        except RenderedBodyTooLarge as error:
            # The same template and event render the same way every time: a retry cannot succeed.
            unsent = Attempt(
                number=delivery.next_attempt_number,
                started_at=now,
                duration_ms=0.0,
                status_code=None,
                error=str(error),
                response_body=None,
            )
            delivery.record_attempt(unsent, next_attempt_at=None)
            with suppress(IntegrityError):  # changed meanwhile: its next job decides again
                self.save(delivery)
            return None
        return PreparedDelivery(delivery, request, webhook.id, spec.rate_limit_per_second)

    def record_attempt(self, delivery: Delivery, attempt: Attempt) -> None:
        """Records the outcome and when to try again; 410 Gone also switches the webhook off.

        When the delivery changed meanwhile (another worker, a redelivery), it is read again and the
        attempt recorded after what is there, unless the delivery has finished since.
        """
        for _ in range(RECORD_TRIES):
            try:
                self.save(*self._plan_attempt(delivery, attempt))
                return
            except IntegrityError:
                reloaded = self._get(Delivery, delivery.id)
                if reloaded is None or reloaded.finished:
                    return
                delivery = reloaded
                attempt = replace(attempt, number=delivery.next_attempt_number)

    def record_attempts(self, attempts: Sequence[tuple[Delivery, Attempt]]) -> None:
        """Records several attempts in one transaction (one by one if any of them raced another)."""
        planned = [aggregate for d, a in attempts for aggregate in self._plan_attempt(d, a)]
        try:
            self.save(*planned)
        except IntegrityError:
            for delivery, attempt in attempts:
                fresh = self._get(Delivery, delivery.id)
                if fresh is not None and not fresh.finished:
                    self.record_attempt(fresh, replace(attempt, number=fresh.next_attempt_number))

    def record_unmade_attempt(self, delivery_id: UUID, error: str) -> None:
        """Records an attempt whose request could not even be made (preparing it raised) as a failed
        attempt with that error, so that the delivery follows its retry schedule and ends, instead
        of its job failing again and again."""
        delivery = self._get(Delivery, delivery_id)
        if delivery is None or delivery.finished:
            return
        attempt = Attempt(
            number=delivery.next_attempt_number,
            started_at=self.clock(),
            duration_ms=0.0,
            status_code=None,
            error=error,
            response_body=None,
        )
        self.record_attempt(delivery, attempt)

    def _plan_attempt(self, delivery: Delivery, attempt: Attempt) -> list[Aggregate]:
        next_attempt_at = (
            None
            if attempt.succeeded
            else self.retry_policy.next_attempt_at(
                attempt.number, attempt.status_code, attempt.retry_after, self.clock(), self.rand()
            )
        )
        delivery.record_attempt(attempt, next_attempt_at)
        if attempt.status_code == GONE:
            webhook = self._get(Webhook, delivery.webhook_id)
            if webhook is not None and not webhook.deleted and webhook.active:
                webhook.set_active(False, actor=SYSTEM_ACTOR, reason="gone")
                return [delivery, webhook]
        return [delivery]

    def redeliver(self, principal: Principal, delivery_id: UUID) -> Delivery:
        principal.require(Permission.MANAGE_DELIVERIES)
        delivery = self._get(Delivery, delivery_id)
        if delivery is None or delivery.organization_id != principal.organization_id:
            raise NotFound("no such delivery")
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
            deliveries = [
                d
                for delivery_id in failed[start : start + RECOVERY_BATCH]
                if (d := self._get(Delivery, delivery_id)) is not None and d.status == DeliveryStatus.FAILED
            ]
            for delivery in deliveries:
                delivery.redeliver(actor=principal.actor, now=now)
            recovered += self._save_each_or_all(deliveries)
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
            ids = [event_id for event_id, _ in page]
            wanted = {Delivery.create_id(event_id, webhook.id): event_id for event_id in ids}
            existing = self.views.existing_deliveries(list(wanted))
            events = self.views.states([wanted[d] for d in wanted if d not in existing])
            deliveries = [
                Delivery(
                    event_id=event.id,
                    webhook_id=webhook.id,
                    organization_id=event.organization_id,
                    event_type=event.type,
                )
                for event in events.values()
                if isinstance(event, Event) and matches.matches(event.payload)
            ]
            created += self._save_each_or_all(deliveries)
        self.follower.catch_up()
        return created

    def disable_failing_webhooks(self, failing_for: timedelta) -> int:
        """Switches off (as `system`, reason "failing") every webhook whose deliveries have all
        failed for that long; returns how many."""
        disabled = 0
        for webhook_id in self.views.failing_webhooks(self.clock() - failing_for):
            webhook = self._get(Webhook, webhook_id)
            if webhook is None or webhook.deleted or not webhook.active:
                continue
            webhook.set_active(False, actor=SYSTEM_ACTOR, reason="failing")
            with suppress(IntegrityError):  # changed meanwhile: the next check decides again
                self.save(webhook)
                disabled += 1
        return disabled

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
