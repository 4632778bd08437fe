"""The Event aggregate: something a source system published, and whether it was fanned out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import Problem
from domain.nesting import too_deep

MAX_EVENT_TYPE = 200
MAX_IDEMPOTENCY_KEY = 200
MAX_BATCH = 500
RESERVED_PREFIX = "hookline."  # operator events (`domain.operations`): only Hookline publishes them
DEFAULT_MAX_PAYLOAD = 256 * 1024


@dataclass(frozen=True)
class Publication:
    """What a source system asks to publish."""

    type: str
    payload: Any
    idempotency_key: str | None = None
    occurred_at: datetime | None = None
    trace_parent: str | None = None  # the W3C traceparent its attempts continue (when traces are on)


def check_publication(event: Publication, max_payload_bytes: int, prefix: str = "") -> list[Problem]:
    problems = []
    if not event.type.strip():
        problems.append(Problem(f"{prefix}type", "must not be empty"))
    elif len(event.type) > MAX_EVENT_TYPE:
        problems.append(Problem(f"{prefix}type", f"must be at most {MAX_EVENT_TYPE} characters"))
    elif event.type.startswith(RESERVED_PREFIX):
        problems.append(
            Problem(f"{prefix}type", f"{RESERVED_PREFIX}* types are published by Hookline itself")
        )
    if not isinstance(event.payload, dict):
        problems.append(Problem(f"{prefix}payload", "must be a JSON object"))
    else:
        try:
            size = len(orjson.dumps(event.payload))
        except (TypeError, orjson.JSONEncodeError):
            problems.append(Problem(f"{prefix}payload", "must be plain JSON"))
        else:
            if message := too_deep(event.payload):
                problems.append(Problem(f"{prefix}payload", message))
            if size > max_payload_bytes:
                problems.append(
                    Problem(f"{prefix}payload", f"is {size} bytes; at most {max_payload_bytes} are accepted")
                )
    key = event.idempotency_key
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        problems.append(Problem(f"{prefix}idempotencyKey", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters"))
    return problems


class Event(Aggregate):
    """A published event; with an idempotency key its id is derived, so a repeat collapses onto it."""

    trace_parent: str | None = None  # (events recorded before traces were kept have none)
    erased_reason: str | None = None  # why `eraseEvent` erased it (None: not by eraseEvent)

    @staticmethod
    def create_id(organization_id: UUID, idempotency_key: str | None, **_: Any) -> UUID:
        return ids.event_id(organization_id, idempotency_key) if idempotency_key else uuid4()

    @event("Published")
    def __init__(
        self,
        organization_id: UUID,
        type: str,
        payload: dict[str, Any],
        occurred_at: datetime,
        idempotency_key: str | None,
        actor: str,
        trace_parent: str | None = None,
    ) -> None:
        self.organization_id = organization_id
        self.type = type
        self.payload: dict[str, Any] | None = payload  # None once erased
        self.occurred_at = occurred_at
        self.idempotency_key = idempotency_key
        self.trace_parent = trace_parent
        self.fanned_out = False
        self.webhook_ids: list[UUID] = []
        self.webhook_versions: list[int] = []

    @property
    def erased(self) -> bool:
        """Its payload was erased (`store.erasure`): a published payload is never None otherwise."""
        return self.payload is None

    def erase(self, actor: str, reason: str) -> None:
        """Records the erasure of its payload (done in the store: `store.erasure`), once."""
        if not self.erased_reason:
            self._erased(actor=actor, reason=reason)

    @event("Erased")
    def _erased(self, actor: str, reason: str) -> None:
        self.payload = None
        self.erased_reason = reason

    def fan_out(self, webhooks: list[tuple[UUID, int]]) -> None:
        """Record which webhooks (at which versions) the event goes to: the deliveries it owes, each
        stored only when its first attempt ends (`Delivery.owed`). Done once (a rerun conflicts on
        the version)."""
        if not self.fanned_out:
            self._fanned_out(webhook_ids=[i for i, _ in webhooks], webhook_versions=[v for _, v in webhooks])

    def owed(self) -> dict[UUID, UUID]:
        """The deliveries its fan-out owes: each one's webhook, by the delivery's (derived) id."""
        return {ids.delivery_id(self.id, webhook_id): webhook_id for webhook_id in self.webhook_ids}

    @event("FannedOut")
    def _fanned_out(self, webhook_ids: list[UUID], webhook_versions: list[int] | None = None) -> None:
        self.fanned_out = True
        self.webhook_ids = list(webhook_ids)
        self.webhook_versions = list(webhook_versions or [])
