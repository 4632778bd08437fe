"""Deterministic ids, so that a repeat of the same thing collapses onto the same aggregate."""

from __future__ import annotations

from uuid import UUID, uuid5

_ROOT = UUID("5b0f6f3e-6a53-4f61-9d8e-0c2f1f7c9a10")
ORGANIZATION_NS = uuid5(_ROOT, "organization")
EVENT_NS = uuid5(_ROOT, "event")
DELIVERY_NS = uuid5(_ROOT, "delivery")


def organization_id(name: str) -> UUID:
    return uuid5(ORGANIZATION_NS, name)


def event_id(organization: UUID, idempotency_key: str) -> UUID:
    return uuid5(EVENT_NS, f"{organization.hex}/{idempotency_key}")


def delivery_id(event: UUID, webhook: UUID) -> UUID:
    return uuid5(DELIVERY_NS, f"{event.hex}/{webhook.hex}")


def parse_id(value: str) -> UUID | None:
    """An id given by a caller, or None when it is not one of ours (then it cannot exist)."""
    try:
        return UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None
