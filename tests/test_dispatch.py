"""Who queues what: a process queues what it has just created (a published event's fan-out, a new
delivery's first attempt) as soon as it is committed, not when the log follower gets to it; the
follower's dispatcher queues what later events call for (a retry, an ordered webhook's next head).
Real application on SQLite, real dispatcher; the queue only records what it is given."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from domain.application import Hookline
from domain.deliveries import Attempt, Delivery
from hookline.wiring import Opened
from store.readmodel import ReadModel
from tests.apps import UNREACHABLE, RecordingQueue, published_to
from workers.dispatch import Dispatcher


class BrokenQueue(RecordingQueue):
    def fan_out(self, event_id: UUID, trace_parent: str | None = None) -> None:
        raise ConnectionError("redis is down")


@pytest.fixture
def views(both: Opened) -> ReadModel:
    return both.read_model


def test_what_a_process_creates_is_queued_by_it_before_the_follower_sees_it(
    app: Hookline, views: ReadModel
) -> None:
    queue = RecordingQueue()
    app.saved_listeners.append(Dispatcher(queue, views.queries).recorded)
    events = published_to(app, UNREACHABLE, 3)
    assert queue.fanned_out == events
    deliveries = [d for ids in app.fan_out_many(events) for d in ids]
    assert len(deliveries) == 3
    assert queue.delivered == [(d, None) for d in deliveries]
    # the deliveries were queued before the log follower read them
    assert views.position < (app.recorder.max_notification_id() or 0)


def test_the_follower_does_not_queue_again_what_its_creator_queued(app: Hookline, views: ReadModel) -> None:
    queue = RecordingQueue()
    views.listeners.append(Dispatcher(queue, views.queries))
    app.fan_out_many(published_to(app, UNREACHABLE, 3))
    views.catch_up()
    assert queue.fanned_out == []
    assert queue.delivered == []


def test_the_follower_queues_a_retry_at_its_time(app: Hookline, views: ReadModel) -> None:
    queue = RecordingQueue()
    views.listeners.append(Dispatcher(queue, views.queries))
    (delivery_id,) = [d for ids in app.fan_out_many(published_to(app, UNREACHABLE, 1)) for d in ids]
    delivery = app.current_deliveries([delivery_id])[delivery_id]  # owed: nothing stored yet
    app.record_attempts([(delivery, Attempt(1, datetime.now(UTC), 12.5, 503, None, "busy"))])
    views.catch_up()
    retried: Delivery = app.repository.get(delivery_id)
    assert retried.next_attempt_at is not None
    assert queue.delivered == [(delivery_id, retried.next_attempt_at)]


def test_an_ordered_webhooks_deliveries_wait_for_their_turn(app: Hookline, views: ReadModel) -> None:
    queue = RecordingQueue()
    dispatcher = Dispatcher(queue, views.queries)
    app.saved_listeners.append(dispatcher.recorded)
    views.listeners.append(dispatcher)
    deliveries = [d for ids in app.fan_out_many(published_to(app, UNREACHABLE, 3, ordered=True)) for d in ids]
    assert queue.delivered == []  # not by their creator: only the head may go
    views.catch_up()
    assert queue.delivered == [(deliveries[0], None)]


def test_a_queue_that_fails_after_the_commit_loses_nothing(app: Hookline, views: ReadModel) -> None:
    queue = BrokenQueue()
    app.saved_listeners.append(Dispatcher(queue, views.queries).recorded)
    events = published_to(app, UNREACHABLE, 2)  # the failure is logged, not raised: the events are stored
    views.catch_up()
    recovery = RecordingQueue()
    Dispatcher(recovery, views.queries).recover()
    assert recovery.fanned_out == events
