"""A fan-out records the deliveries it owes once per event; a delivery is stored when its first attempt
ends, created and attempted in one event. Until then the read model shows it PENDING from the owed
list, and what a crash left owed is recovered from it (real application on SQLite, real read model)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.application import Hookline, PreparedDelivery
from domain.deliveries import Attempt, Delivery
from domain.events import Event
from domain.webhooks import Webhook
from hookline.wiring import Opened
from tests.apps import UNREACHABLE, RecordingQueue, deliveries_to, opened, published_to
from workers.dispatch import Dispatcher


def stored_topics(app: Hookline, aggregate_id: UUID) -> list[str]:
    return [e.topic for e in app.recorder.select_events(aggregate_id)]


def first_attempts(app: Hookline, deliveries: list[UUID], status_code: int) -> None:
    """Each delivery prepared, and an attempt of it that answered `status_code` recorded."""
    prepared = app.prepare_deliveries([(d, None) for d in deliveries])
    now = datetime.now(UTC)
    app.record_attempts(
        [
            (p.delivery, Attempt(p.delivery.next_attempt_number, now, 3.0, status_code, None, "ok"))
            for p in prepared
            if isinstance(p, PreparedDelivery)
        ]
    )


def test_a_delivery_that_succeeds_at_once_is_one_stored_event(app: Hookline) -> None:
    deliveries = deliveries_to(app, UNREACHABLE, 3)
    assert all(stored_topics(app, d) == [] for d in deliveries)  # owed by the fan-out only
    first_attempts(app, deliveries, 200)
    assert all(stored_topics(app, d) == [get_topic(Delivery.Attempted)] for d in deliveries)
    stored = app.views.stored(deliveries)
    assert {d.status for d in stored.values() if isinstance(d, Delivery)} == {"SUCCEEDED"}


def test_a_failed_first_attempt_is_one_event_and_the_retry_another(app: Hookline) -> None:
    (delivery_id,) = deliveries_to(app, UNREACHABLE, 1)
    first_attempts(app, [delivery_id], 503)
    delivery = app.current_deliveries([delivery_id])[delivery_id]
    assert (delivery.status, delivery.version, delivery.next_attempt_at is not None) == (
        "RETRYING",
        1,
        True,
    )
    app.record_attempts([(delivery, Attempt(2, datetime.now(UTC), 3.0, 200, None, "ok"))])
    assert stored_topics(app, delivery_id) == [
        get_topic(Delivery.Attempted),
        get_topic(getattr(Delivery, "AttemptSucceeded")),  # noqa: B009
    ]


def test_an_events_owed_deliveries_are_recorded_once_with_the_webhooks_versions(app: Hookline) -> None:
    (event_id,) = published_to(app, UNREACHABLE, 1)
    (made,) = app.fan_out_many([event_id])
    event: Event = app.repository.get(event_id)
    assert isinstance(event, Event)
    assert event.version == 2  # published, fanned out: nothing else
    webhook = app.views.stored([app.current_deliveries(made)[made[0]].webhook_id])
    assert [(w.id, w.version) for w in webhook.values() if isinstance(w, Webhook)] == list(
        zip(event.webhook_ids, event.webhook_versions, strict=True)
    )


def test_the_read_model_shows_owed_deliveries_pending_before_their_first_attempt(both: Opened) -> None:
    app, views = both.app, both.read_model.queries
    deliveries = deliveries_to(app, UNREACHABLE, 2)  # applied by the read model
    organization = app.current_deliveries(deliveries)[deliveries[0]].organization_id
    one = views.delivery(organization, deliveries[0])
    assert one is not None
    assert (one.status, one.attempts) == ("PENDING", [])
    page = views.deliveries(
        organization, webhook_id=None, event_id=None, status="PENDING", first=10, after=None
    )
    assert {d.id for _, d in page.items} == set(deliveries)
    updates = views.delivery_updates(organization, None, 0, 10)
    assert [(u.delivery_id, u.status) for u in updates] == [(d, "PENDING") for d in deliveries]

    first_attempts(app, deliveries, 200)
    both.read_model.catch_up()
    page = views.deliveries(organization, webhook_id=None, event_id=None, status=None, first=10, after=None)
    assert {d.id: d.status for _, d in page.items} == dict.fromkeys(deliveries, "SUCCEEDED")
    later = views.delivery_updates(organization, None, updates[-1].position, 10)
    assert [(u.delivery_id, u.status, u.attempt) for u in later] == [(d, "SUCCEEDED", 1) for d in deliveries]


def test_deliveries_owed_when_a_process_died_are_queued_and_sent_by_the_next(tmp_path: Path) -> None:
    """The fan-out was committed, its deliveries never attempted: a new process (nothing remembered
    in memory) queues them from the owed rows and builds each from its event."""
    died = opened(tmp_path).app
    deliveries = deliveries_to(died, UNREACHABLE, 3)
    died.close()

    both = opened(tmp_path)
    app = both.app
    try:
        both.read_model.catch_up()
        queue = RecordingQueue()
        Dispatcher(queue, both.read_model.queries).recover()
        assert sorted(d for d, _ in queue.delivered) == sorted(deliveries)
        first_attempts(app, deliveries, 200)
        assert all(stored_topics(app, d) == [get_topic(Delivery.Attempted)] for d in deliveries)
    finally:
        app.close()


def test_a_job_naming_the_owing_event_is_prepared_before_the_read_model_has_its_rows(tmp_path: Path) -> None:
    """A worker that did not fan the event out (distributed mode) learns the owing event from the job."""
    fanning = opened(tmp_path).app
    other = opened(tmp_path).app
    try:
        events = published_to(fanning, UNREACHABLE, 1)
        (made,) = fanning.fan_out_many(events)  # not applied by any read model yet
        (unknown,) = other.prepare_deliveries([(made[0], None)])
        assert not isinstance(unknown, PreparedDelivery)  # nothing tells it which event owes it
        other.owed.remember(made, events[0])
        (prepared,) = other.prepare_deliveries([(made[0], None)])
        assert isinstance(prepared, PreparedDelivery)
        assert prepared.delivery.id == made[0]
        assert prepared.delivery.status == "PENDING"
    finally:
        fanning.close()
        other.close()


def test_a_job_naming_an_event_held_here_leaves_it_held(app: Hookline) -> None:
    """The worker that fanned the event out takes one of its jobs: the event it saved is used, not read."""
    (event_id,) = published_to(app, UNREACHABLE, 1)
    (made,) = app.fan_out_many([event_id])
    app.owed.remember(made, event_id)  # as the arq job that names it does
    assert isinstance(app.owed.owing(made)[made[0]], Event)
