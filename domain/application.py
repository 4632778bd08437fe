"""Hookline's event-sourced application: every command is get → one aggregate call → save.

Commands check the caller's permission and organisation; lists are answered by the `Views` port.
Time, randomness and name resolution come in from the composition root. The commands live by
concern in `domain.service`; this class puts them together.
"""

from __future__ import annotations

from domain.service.access import AccessCommands
from domain.service.base import PreparedDelivery, Resolve
from domain.service.configuration import ConfigurationCommands
from domain.service.delivery import DeliveryCommands


class Hookline(AccessCommands, ConfigurationCommands, DeliveryCommands):
    name = "Hookline"


__all__ = ["Hookline", "PreparedDelivery", "Resolve"]
