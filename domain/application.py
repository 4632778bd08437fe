"""Hookline's event-sourced application: every command is get → one aggregate call → save.

Commands check the caller's permission and organisation; lists are answered by the read model it is
given (`domain.views`). Time, randomness and name resolution come in from the composition root. The
commands live by concern in `domain.service`; this class puts them together.
"""

from __future__ import annotations

from domain.service.access import AccessCommands
from domain.service.base import Resolve, Storage
from domain.service.configuration import ConfigurationCommands
from domain.service.delivery import NotDue, NothingToSend, Prepared, PreparedDelivery
from domain.service.erasure import ErasureCommands
from domain.service.publishing import Publishing, PublishingCommands


class Hookline(AccessCommands, ConfigurationCommands, PublishingCommands, ErasureCommands):
    name = "Hookline"


__all__ = (
    "Hookline",
    "NotDue",
    "NothingToSend",
    "Prepared",
    "PreparedDelivery",
    "Publishing",
    "Resolve",
    "Storage",
)
