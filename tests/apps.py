"""The real application in the test's process (SQLite, or PostgreSQL in a database of its own), with one
webhook and published events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.application import Hookline
from domain.events import Publication
from domain.roles import Role
from domain.webhooks import WebhookSpec
from hookline.settings import Settings
from hookline.wiring import Opened, open_application
from tests.support import postgres_database

UNREACHABLE = "http://127.0.0.1:9/"  # for webhooks whose deliveries the test never sends


def application(directory: Path, **settings: Any) -> Hookline:
    """The application on a SQLite file in `directory`, private targets allowed."""
    return opened(directory, **settings).app


def opened(directory: Path, **settings: Any) -> Opened:
    """`application`, with the read model it was given."""
    return open_application(
        Settings(
            database_url=f"sqlite:///{directory}/hookline.sqlite3", allow_private_targets=True, **settings
        )
    )


@contextmanager
def postgres_application() -> Iterator[Opened]:
    """The application (and its read model) on a PostgreSQL database of its own, dropped afterwards."""
    with postgres_database() as url:
        opened = open_application(Settings(database_url=url, database_pool_size=2))
        try:
            yield opened
        finally:
            opened.app.close()


class RecordingQueue:
    """A job queue that only records what it is given (for the dispatcher and the sweeper)."""

    def __init__(self) -> None:
        self.fanned_out: list[UUID] = []
        self.delivered: list[tuple[UUID, datetime | None]] = []

    def fan_out(self, event_id: UUID, trace_parent: str | None = None) -> None:
        self.fanned_out.append(event_id)

    def deliver(self, delivery_id: UUID, at: datetime | None = None, owed_by: UUID | None = None) -> None:
        self.delivered.append((delivery_id, at))


def published_to(app: Hookline, url: str, count: int, *, ordered: bool = False) -> list[UUID]:
    """One webhook to `url` for "job.event" and `count` such events published, the read model caught up:
    the events' ids."""
    principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
    spec = WebhookSpec(name="target", event_types=("job.event",), target_url=url, ordered=ordered)
    app.create_webhook(principal, spec, active=True, allow_duplicate=True)
    events = app.publish_events(principal, [Publication("job.event", {"n": n}) for n in range(count)])
    app.follower.catch_up()
    return [event_id for event_id, _ in events]


def deliveries_to(app: Hookline, url: str, count: int) -> list[UUID]:
    """`published_to`, fanned out: the deliveries, pending."""
    deliveries = [d for ids in app.fan_out_many(published_to(app, url, count)) for d in ids]
    app.follower.catch_up()
    assert len(deliveries) == count
    return deliveries
