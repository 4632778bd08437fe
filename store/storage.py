"""Opens the event store (SQLite or PostgreSQL, as eventsourcing's settings name it) before anything
that uses it: the read model is built from its recorder, and both are handed to the application."""

from __future__ import annotations

import os
from collections.abc import Mapping
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    InfrastructureFactory,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from eventsourcing.utils import Environment

from domain.service.base import Storage


def open_storage(name: str, env: Mapping[str, str]) -> Storage:
    """The factory, mapper and recorder the library's `Application(env)` would build for an
    application called `name`, with the same settings (the process's environment, then `env`)."""
    environment = Environment(name, {**os.environ, **env})
    factory = InfrastructureFactory.construct(environment)
    transcoder = factory.transcoder()
    if isinstance(transcoder, JSONTranscoder):  # as `Application.register_transcodings`
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
    mapper: Mapper[UUID] = factory.mapper(transcoder=transcoder)
    return Storage(environment, factory, mapper, factory.application_recorder())
