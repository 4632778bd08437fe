"""Operator events (`domain.operations`) as the data plane records them: webhooks' streaks of failed
attempts, counted with the attempts, and a webhook switched off by `system`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from domain.deliveries import Attempt, Delivery
from domain.operations import (
    FailureStreak,
    delivery_failed,
    reports_failure,
    webhook_disabled,
    webhook_failing,
)
from domain.roles import SYSTEM_ACTOR
from domain.service.base import RECORD_TRIES, Changes, HooklineBase
from domain.webhooks import Webhook


class OperatorEvents(HooklineBase):
    def _save_counted(
        self, plans: Sequence[Changes], attempts: Sequence[tuple[Delivery, Attempt]]
    ) -> list[bool]:
        """Saves attempts' changes (`plans`, one item each) with each webhook's streak of failed
        attempts counted on them (and the `hookline.webhook.failing` events of the thresholds it
        reaches) in one transaction; which were saved. When that races another writer, the changes
        are saved on their own, then those saved are counted on the streaks as they now are."""
        counted = self._count_failures(attempts)
        if counted:
            with suppress(IntegrityError):
                self._save_together([*plans, counted])
                return [True] * len(plans)
        saved = self._save_all_or_each(plans)
        if counted:
            self._record_failures([pair for pair, ok in zip(attempts, saved, strict=True) if ok])
        return saved

    def _count_failures(
        self, attempts: Sequence[tuple[Delivery, Attempt]]
    ) -> list[DomainEventProtocol[UUID]]:
        """What counting the attempts records: each webhook's streak of failed attempts as the store
        has it now, moved on, and a `hookline.webhook.failing` event for each threshold reached."""
        by_webhook: dict[UUID, list[tuple[Delivery, Attempt]]] = {}
        for delivery, attempt in attempts:
            by_webhook.setdefault(delivery.webhook_id, []).append((delivery, attempt))
        streaks = self._fresh(FailureStreak, [FailureStreak.create_id(w) for w in by_webhook])
        now = self.clock()
        changes: list[DomainEventProtocol[UUID]] = []
        for webhook_id, pairs in by_webhook.items():
            streak = streaks.get(FailureStreak.create_id(webhook_id))
            if streak is None:
                if all(attempt.succeeded for _, attempt in pairs):
                    continue  # never failed: nothing to count
                streak = FailureStreak(webhook_id)
            reached = streak.count([attempt for _, attempt in pairs], self.failing_thresholds)
            changes.extend(streak.collect_events())
            if reached:
                organization_id, name = pairs[0][0].organization_id, self._webhook_name(webhook_id)
                for threshold in reached:
                    failing = webhook_failing(organization_id, webhook_id, name, threshold, now)
                    changes.extend(failing.collect_events())
        return changes

    def _record_failures(self, attempts: Sequence[tuple[Delivery, Attempt]]) -> None:
        """Counts attempts already saved, reading the streaks again when another writer moved them."""
        for _ in range(RECORD_TRIES):
            counted = self._count_failures(attempts)
            if not counted:
                return
            with suppress(IntegrityError):
                self._save_together([counted])
                return

    def _ended(self, delivery: Delivery) -> list[DomainEventProtocol[UUID]]:
        """The `hookline.delivery.failed` of a delivery just attempted, if that ended it FAILED: saved
        with the attempt, so once per end whatever the races."""
        if not reports_failure(delivery):
            return []
        ended = delivery_failed(delivery, self._webhook_name(delivery.webhook_id), self.clock())
        return [*ended.collect_events()]

    def _webhook_name(self, webhook_id: UUID) -> str:
        webhook = self._recent(Webhook, [webhook_id]).get(webhook_id)
        return webhook.spec.name if webhook is not None else ""

    def _disable(self, webhook: Webhook, reason: str) -> list[DomainEventProtocol[UUID]]:
        """Switches a webhook off as `system`: its change, with the `hookline.webhook.disabled` event."""
        webhook.set_active(False, actor=SYSTEM_ACTOR, reason=reason)
        disabled = webhook_disabled(
            webhook.organization_id, webhook.id, webhook.spec.name, reason, webhook.version, self.clock()
        )
        return [*webhook.collect_events(), *disabled.collect_events()]
