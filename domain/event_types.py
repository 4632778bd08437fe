"""Event types an organisation defines itself (the built-in ones are in `domain.catalogue`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.catalogue import EventTypeSpec

_NAMESPACE = UUID("0f1c9b5e-0d7e-4a0b-9b8e-4c1d2e3f4a5b")


class EventType(Aggregate):
    """One organisation's definition of an event type; defining the name again replaces it."""

    @staticmethod
    def create_id(organization_id: UUID, name: str, **_: Any) -> UUID:
        return uuid5(_NAMESPACE, f"{organization_id.hex}/{name}")

    @event("Defined")
    def __init__(
        self,
        organization_id: UUID,
        name: str,
        description: str | None,
        sample_payload: dict[str, Any],
        actor: str,
    ) -> None:
        self.organization_id = organization_id
        self.name = name
        self.description = description
        self.sample_payload = sample_payload

    def redefine(self, description: str | None, sample_payload: dict[str, Any], actor: str) -> None:
        if (description, sample_payload) != (self.description, self.sample_payload):
            self._redefined(description=description, sample_payload=sample_payload, actor=actor)

    @event("Redefined")
    def _redefined(self, description: str | None, sample_payload: dict[str, Any], actor: str) -> None:
        self.description = description
        self.sample_payload = sample_payload

    @property
    def spec(self) -> EventTypeSpec:
        return EventTypeSpec.of(self.name, self.description, self.sample_payload)
