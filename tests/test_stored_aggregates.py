"""`Views.stored`: many aggregates read from the event store in one query equal what the library's
repository reads one by one, on SQLite and on PostgreSQL (a database of the test's own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from domain.application import Hookline, PreparedDelivery
from domain.deliveries import Attempt, Delivery
from domain.events import Event, Publication
from domain.filters import Condition
from domain.roles import Role
from domain.webhooks import Webhook, WebhookSpec
from hookline.settings import Settings
from hookline.wiring import Opened, open_application
from store.readmodel import ReadModel
from tests.apps import postgres_application


@contextmanager
def opened(kind: str, directory: Path) -> Iterator[Opened]:
    if kind == "sqlite":
        sqlite = open_application(Settings(database_url=f"sqlite:///{directory}/h.sqlite3"))
        try:
            yield sqlite
        finally:
            sqlite.app.close()
        return
    with postgres_application() as postgres:
        yield postgres


@contextmanager
def application(kind: str, directory: Path) -> Iterator[Hookline]:
    with opened(kind, directory) as both:
        yield both.app


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_stored_aggregates_equal_the_repositorys(kind: str, tmp_path: Path) -> None:
    with application(kind, tmp_path) as app:
        principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
        spec = WebhookSpec(name="t", event_types=("a.b",), target_url="https://example.com/hook")
        webhook = app.create_webhook(principal, spec, active=True, allow_duplicate=True)
        app.set_webhook_active(principal, webhook.id, False)
        app.set_webhook_active(principal, webhook.id, True)  # three events
        published = app.publish_events(principal, [Publication("a.b", {"n": n}) for n in range(4)])
        app.follower.catch_up()
        events = [event_id for event_id, _ in published]
        deliveries = [d for made in app.fan_out_many(events) for d in made]
        failed = Attempt(1, datetime.now(UTC), 12.5, 503, None, "busy", "7")
        app.record_attempts([(d, failed) for d in app.current_deliveries(deliveries[:2]).values()])

        wanted = [*deliveries, *events, webhook.id, deliveries[0], uuid4()]  # a repeat, an unknown
        stored = app.views.stored(wanted)

        assert set(stored) == {*deliveries[:2], *events, webhook.id}  # the others are owed only
        for aggregate_id, aggregate in stored.items():
            expected: object = app.repository.get(aggregate_id)
            assert type(aggregate) is type(expected)
            assert vars(aggregate) == vars(expected)
        attempted = stored[deliveries[0]]
        assert isinstance(attempted, Delivery)
        assert attempted.version == 1  # created at its first attempt
        changed = stored[webhook.id]
        assert isinstance(changed, Webhook)
        assert changed.version == 3
        assert app.views.stored([]) == {}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_events_the_read_model_has_not_applied_are_read_from_the_store_at_once(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker fans out events as soon as they are recorded, before any read model applied them."""
    with opened(kind, tmp_path) as both:
        app = both.app
        principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
        spec = WebhookSpec(name="t", event_types=("a.b",), target_url="https://example.com/hook")
        app.create_webhook(principal, spec, active=True, allow_duplicate=True)
        app.follower.catch_up()
        published = app.publish_events(principal, [Publication("a.b", {"n": n}) for n in range(30)])
        events = [event_id for event_id, _ in published]
        assert both.read_model.queries.events_not_fanned_out() == []  # not applied by the read model yet
        reads_one_by_one: list[object] = []
        select_events = app.recorder.select_events

        def one_by_one(*args: Any, **kwargs: Any) -> Any:
            reads_one_by_one.append(args)
            return select_events(*args, **kwargs)

        monkeypatch.setattr(app.recorder, "select_events", one_by_one)

        made = app.fan_out_many(events)

        assert reads_one_by_one == []
        assert [len(deliveries) for deliveries in made] == [1] * 30
        monkeypatch.undo()
        assert all(app.repository.get(event_id).fanned_out for event_id in events)
        owed = app.current_deliveries([d for (d,) in made])
        assert all(owed[d].event_id == e for e, (d,) in zip(events, made, strict=True))


def test_a_webhooks_changed_filters_hold_for_the_next_fan_out(tmp_path: Path) -> None:
    """Filters are compiled once per saved version of a webhook (kept by the read model, by version)."""
    with application("sqlite", tmp_path) as app:
        principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
        severe = ((Condition("severity", "GTE", [3]),),)
        spec = WebhookSpec(
            name="t", event_types=("a.b",), target_url="https://example.com/hook", filters=severe
        )
        webhook = app.create_webhook(principal, spec, active=True, allow_duplicate=True)
        app.follower.catch_up()

        def fanned_out(severity: int) -> int:
            published = app.publish_events(principal, [Publication("a.b", {"severity": severity})])
            made = app.fan_out_many([published[0][0]])
            app.follower.catch_up()
            return len(made[0])

        assert (fanned_out(5), fanned_out(2)) == (1, 0)
        critical = ((Condition("severity", "GTE", [9]),),)
        app.update_webhook(principal, webhook.id, {"filters": critical}, None)
        app.follower.catch_up()
        assert (fanned_out(5), fanned_out(9)) == (0, 1)
        app.update_webhook(principal, webhook.id, {"filters": ()}, None)
        app.follower.catch_up()
        assert fanned_out(0) == 1


def _three_events_applied(both: Opened) -> tuple[ReadModel, list[UUID]]:
    """A webhook for type a.b and three events of it, applied by the read model (not fanned out)."""
    app, views = both.app, both.read_model
    principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
    spec = WebhookSpec(name="t", event_types=("a.b",), target_url="https://example.com/hook")
    app.create_webhook(principal, spec, active=True, allow_duplicate=True)
    published = app.publish_events(principal, [Publication("a.b", {"n": n}) for n in range(3)])
    views.catch_up()
    return views, [event_id for event_id, _ in published]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_events_state_is_read_from_its_stored_events_not_kept_as_a_snapshot(
    kind: str, tmp_path: Path
) -> None:
    """Events' payloads are not written to hl_states again: the read model reads them from the store,
    and applies a fan-out to the state before it."""
    with opened(kind, tmp_path) as both:
        app = both.app
        views, events = _three_events_applied(both)
        views.cache.clear()  # as in another process, or after the cache let them go

        with views.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT COUNT(*) FROM hl_states WHERE id IN ({','.join('?' * 3)})", [e.hex for e in events]
            )
            assert c.fetchone()[0] == 0
        read = views.queries.states(events)
        assert {i: vars(a) for i, a in read.items()} == {e: vars(app.repository.get(e)) for e in events}

        app.fan_out_many(events)  # stored at version 2 before the read model applies it
        views.cache.clear()
        views.catch_up()  # applies version 2 to the state of version 1, read from the store

        fanned_out = views.queries.states(events)
        assert all(isinstance(e, Event) and e.fanned_out and e.version == 2 for e in fanned_out.values())
        assert set(fanned_out) == set(events)
        assert views.queries.events_not_fanned_out() == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_deliveries_the_read_model_lacks_are_read_from_the_store_once(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker asks for deliveries the follower has not applied yet: they are read from the store,
    each of their events decoded once (not read, decoded and thrown away, then read again)."""
    with opened(kind, tmp_path) as both:
        app = both.app
        views, events = _three_events_applied(both)
        deliveries = [d for made in app.fan_out_many(events) for d in made]
        failed = Attempt(1, datetime.now(UTC), 12.5, 503, None, "busy", "7")
        app.record_attempts([(d, failed) for d in app.current_deliveries(deliveries).values()])
        views.cache.clear()
        decoded: list[str] = []
        to_domain_event = app.mapper.to_domain_event

        def counted(stored: Any) -> Any:
            decoded.append(stored.topic)
            return to_domain_event(stored)

        monkeypatch.setattr(app.mapper, "to_domain_event", counted)

        read = views.queries.states(deliveries)
        assert decoded == [get_topic(Delivery.Attempted)] * 3
        assert {i: vars(a) for i, a in read.items()} == {d: vars(app.repository.get(d)) for d in deliveries}


def test_a_webhooks_changed_spec_holds_for_the_next_delivery(tmp_path: Path) -> None:
    """A delivery is prepared with the spec of its webhook's saved version, built once per version
    (kept by the read model, by version)."""
    with opened("sqlite", tmp_path) as both:
        app = both.app
        principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
        spec = WebhookSpec(name="t", event_types=("a.b",), target_url="https://example.com/one")
        webhook = app.create_webhook(principal, spec, active=True, allow_duplicate=True)
        app.follower.catch_up()

        def prepared_url() -> str:
            published = app.publish_events(principal, [Publication("a.b", {"n": 1})])
            (made,) = app.fan_out_many([published[0][0]])
            app.follower.catch_up()
            (prepared,) = app.prepare_deliveries([(made[0], None)])
            assert isinstance(prepared, PreparedDelivery)
            return prepared.request.url

        assert prepared_url() == "https://example.com/one"
        saved = app.views.states([webhook.id])[webhook.id]
        assert isinstance(saved, Webhook)
        assert app.views.saved(saved) is app.views.saved(saved)  # built once for the version
        app.update_webhook(principal, webhook.id, {"target_url": "https://example.com/two"}, None)
        app.follower.catch_up()
        assert prepared_url() == "https://example.com/two"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_deliverys_state_is_read_from_its_stored_events_not_kept_as_a_snapshot(
    kind: str, tmp_path: Path
) -> None:
    """A delivery's attempts are not written to hl_states again (a snapshot after each attempt held
    all of them): the read model reads its state from the store and applies an attempt to the state
    before it."""
    with opened(kind, tmp_path) as both:
        app = both.app
        views, events = _three_events_applied(both)
        deliveries = [d for made in app.fan_out_many(events) for d in made]
        views.catch_up()
        views.cache.clear()  # as in another process, or after the cache let them go

        with views.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT COUNT(*) FROM hl_states WHERE id IN ({','.join('?' * 3)})",
                [d.hex for d in deliveries],
            )
            assert c.fetchone()[0] == 0
        owed = views.queries.states(deliveries)  # from their events: nothing about them is stored
        assert all(isinstance(d, Delivery) and d.status == "PENDING" for d in owed.values())
        assert {i: vars(a) for i, a in owed.items()} == {
            i: vars(a) for i, a in app.current_deliveries(deliveries).items()
        }

        failed = Attempt(1, datetime.now(UTC), 12.5, 503, None, "busy", "7")
        app.record_attempts([(d, failed) for d in app.current_deliveries(deliveries).values()])
        views.catch_up()
        read = views.queries.states(deliveries)
        assert {i: vars(a) for i, a in read.items()} == {d: vars(app.repository.get(d)) for d in deliveries}
        again = replace(failed, number=2)
        app.record_attempts([(d, again) for d in app.current_deliveries(deliveries).values()])  # version 2
        views.cache.clear()
        views.catch_up()  # applies version 2 to the state of version 1, read from the store

        attempted = views.queries.states(deliveries)
        assert set(attempted) == set(deliveries)
        assert all(isinstance(d, Delivery) and d.version == 2 for d in attempted.values())
        assert {i: vars(a) for i, a in attempted.items()} == {
            d: vars(app.repository.get(d)) for d in deliveries
        }
        first = attempted[deliveries[0]]
        assert isinstance(first, Delivery)
        page = views.queries.deliveries(
            first.organization_id,
            webhook_id=None,
            event_id=None,
            status="RETRYING",
            first=10,
            after=None,
        )
        assert {d.id: (d.status, d.version) for _, d in page.items} == {
            d: ("RETRYING", 2) for d in deliveries
        }
