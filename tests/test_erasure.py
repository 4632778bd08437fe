"""Erasure in the store (`store.erasure.erase_events`, the contract's "Retention and erasure"): an
event's payload and its deliveries' response bodies leave the stored events themselves, its neighbours
keep theirs, the aggregates still load, and the audit trail still verifies. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain.deliveries import Attempt, Delivery
from domain.events import Event, Publication
from domain.roles import Role
from domain.webhooks import WebhookSpec
from hookline.wiring import Opened
from store.erasure import erase_events
from tests.test_audit_chain_v2 import application, exported, offline, some_history, store, verification

MARKER = "erase-me-7f3a9c"


def attempted(opened: Opened, event_ids: list[UUID]) -> list[UUID]:
    """Each event's owed deliveries, stored with one failed attempt whose response body names the
    event (the marker for the first)."""
    app, delivered = opened.app, []
    for number, event_id in enumerate(event_ids):
        event: Event = app.repository.get(event_id)
        for delivery_id, webhook_id in event.owed().items():
            body = f"{MARKER} response" if number == 0 else f"kept response {number}"
            attempt = Attempt(1, datetime.now(UTC), 3.0, 500, None, body)
            app.save(Delivery.owed(event, webhook_id, delivery_id).attempted(attempt, None))
            delivered.append(delivery_id)
    opened.read_model.catch_up()
    return delivered


def stored_texts(opened: Opened) -> list[str]:
    """Every stored event and every snapshot the read model keeps, decrypted and decoded, as text."""
    db, mapper = opened.read_model.db, opened.read_model.mapper
    with db.transaction(commit=False) as c:
        c.execute(f"SELECT originator_id, originator_version, topic, state FROM {db.events}")
        rows = c.fetchall()
    texts = []
    for row in rows:
        originator_id = row[0] if isinstance(row[0], UUID) else UUID(row[0])
        domain_event = mapper.to_domain_event(StoredEvent(originator_id, row[1], row[2], bytes(row[3])))
        texts.append(repr(domain_event.__dict__))
    with db.transaction(commit=False) as c:  # and the read model's encrypted snapshots
        c.execute("SELECT id, version, topic, state FROM hl_states")
        snapshots = c.fetchall()
    for row in snapshots:
        snapshot = mapper.to_domain_event(StoredEvent(UUID(hex=row[0]), row[1], row[2], bytes(row[3])))
        texts.append(repr(snapshot.__dict__))
    assert snapshots, "no snapshot was read"
    return texts


def raw_bytes(opened: Opened) -> bytes:
    """Every row of every table the store has, as it lies in the database."""
    db = opened.read_model.db
    found = b""
    with db.transaction(commit=False) as c:
        if db.blob == "BLOB":
            c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            c.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        for (table,) in c.fetchall():
            c.execute(f'SELECT * FROM "{table}"')
            found += repr(c.fetchall()).encode()
    return found


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_erasing_an_event_removes_its_payload_and_bodies_from_the_store(kind: str, tmp_path: Path) -> None:
    with store(kind, tmp_path) as url, application(url) as opened:
        some_history(opened)
        app = opened.app
        principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
        published = app.publish_events(
            principal,
            [Publication("job.done", {"note": MARKER}), Publication("job.done", {"n": 1, "who": "é"})],
        )
        target, neighbour = (event_id for event_id, _ in published)
        app.follower.catch_up()
        app.fan_out_many([target, neighbour])
        deliveries = attempted(opened, [target, neighbour])
        assert any(MARKER in text for text in stored_texts(opened))
        before = exported(opened)
        assert verification(opened, "acme").valid
        assert offline(before).valid

        assert erase_events(opened.read_model.db, opened.read_model.mapper, [target], datetime.now(UTC)) == 1
        assert erase_events(opened.read_model.db, opened.read_model.mapper, [target], datetime.now(UTC)) == 0

        texts = stored_texts(opened)
        assert not any(MARKER in text for text in texts)
        assert MARKER.encode() not in raw_bytes(opened)
        assert any("kept response 1" in text for text in texts)  # the neighbour's body stays

        erased: Event = app.repository.get(target)
        assert erased.erased
        assert erased.payload is None
        assert erased.fanned_out
        kept: Event = app.repository.get(neighbour)
        assert not kept.erased
        assert kept.payload == {"n": 1, "who": "é"}
        reloaded: Delivery = app.repository.get(deliveries[0])
        assert [(a.status_code, a.response_body, a.erased) for a in reloaded.attempts] == [(500, None, True)]
        assert reloaded.status == "FAILED"
        other: Delivery = app.repository.get(deliveries[-1])
        assert [(a.response_body, a.erased) for a in other.attempts] == [("kept response 1", False)]

        opened.read_model.catch_up()
        after = exported(opened)
        assert [e["dataHash"] for e in after] == [e["dataHash"] for e in before]
        assert [e["hash"] for e in after] == [e["hash"] for e in before]
        assert sum(e["erased"] for e in after) == 2  # the Published and the one delivery's Attempted
        assert verification(opened, "acme").valid
        assert verification(opened, "globex").valid
        assert offline(after).valid


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_erased_events_deliveries_are_given_up_and_never_prepared(kind: str, tmp_path: Path) -> None:
    with store(kind, tmp_path) as url, application(url) as opened:
        app = opened.app
        admin = app.authenticate(app.issue_key("acme", Role.ADMIN))
        spec = WebhookSpec(name="retrying", event_types=("job.done",), target_url="http://127.0.0.1:9/")
        app.create_webhook(admin, spec, active=True, allow_duplicate=True)
        published = app.publish_events(
            admin, [Publication("job.done", {"note": MARKER}), Publication("job.done", {"n": 2})]
        )
        retried, owed = (event_id for event_id, _ in published)
        app.follower.catch_up()
        app.fan_out_many([retried, owed])
        event: Event = app.repository.get(retried)
        other: Event = app.repository.get(owed)
        ((delivery_id, webhook_id),), (owed_id,) = event.owed().items(), other.owed()
        failed = Attempt(1, datetime.now(UTC), 3.0, 503, None, f"{MARKER} busy")
        app.save(Delivery.owed(event, webhook_id, delivery_id).attempted(failed, datetime.now(UTC)))
        opened.read_model.catch_up()
        assert app.repository.get(delivery_id).status == "RETRYING"

        for event_id in (retried, owed):
            assert app.erase_event(admin, event_id, "asked to") is True
        assert app.erase_event(admin, retried, "again") is True  # a repeat records nothing more

        for given_up in (delivery_id, owed_id):
            delivery: Delivery = app.repository.get(given_up)
            assert (delivery.status, delivery.abandoned_reason) == ("FAILED", "the event was erased")
        prepared = app.prepare_deliveries([(delivery_id, None), (owed_id, None)])
        assert all(type(p).__name__ == "NothingToSend" for p in prepared), prepared
        assert not any(MARKER in text for text in stored_texts(opened))
        erasures = [
            e
            for e in exported(opened)
            if e["eventType"] == "Event.Erased" and e["aggregateId"] == str(retried)
        ]
        assert [(e["data"]["reason"], e["actor"] != "system") for e in erasures] == [("asked to", True)]
        assert verification(opened, "acme").valid
