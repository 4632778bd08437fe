"""The PostgreSQL store inserts new events in one statement, in binary (store.postgres), and keeps
everything the library's recorder promises: exact bytes and topics back, notification ids in order (an
insert waits for a writer before it), a version conflict refused with nothing of its batch written. A
database of the test's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.application import Hookline
from store.postgres import BinaryInsertRecorder
from store.sql import database_of
from tests.apps import postgres_application

AWKWARD = bytes(range(256)) + b'\\x00 "quoted", {braced}, (paren) \\\\ NULL'


@pytest.fixture
def app() -> Iterator[Hookline]:
    with postgres_application() as opened:
        yield opened.app


def test_the_postgresql_store_uses_the_one_statement_recorder(app: Hookline) -> None:
    assert isinstance(app.recorder, BinaryInsertRecorder)


def test_events_come_back_byte_for_byte_with_their_notification_ids(app: Hookline) -> None:
    recorder = app.recorder
    first, second = uuid4(), uuid4()
    batch = [
        StoredEvent(first, 1, 'odd.topic:Name "with", {all} (sorts) \\ é', AWKWARD),
        StoredEvent(first, 2, "plain:Topic", b""),
        StoredEvent(second, 1, "plain:Topic", AWKWARD * 40),  # beyond a page of 8 KB
    ]
    ids = recorder.insert_events(batch)
    more = recorder.insert_events([StoredEvent(second, 2, "plain:Topic", b"\x00")])

    assert ids is not None
    assert more is not None
    assert len(ids) == 3
    assert ids == sorted(ids)
    assert more[0] > ids[-1]
    assert recorder.select_events(first) == batch[:2]
    assert recorder.select_events(second) == [batch[2], StoredEvent(second, 2, "plain:Topic", b"\x00")]
    notifications = recorder.select_notifications(start=ids[0], limit=10)
    assert [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications] == [
        (i, e.originator_id, e.originator_version, e.topic, e.state)
        for i, e in zip([*ids, *more], [*batch, StoredEvent(second, 2, "plain:Topic", b"\x00")], strict=True)
    ]


def test_an_insert_waits_for_an_earlier_writer_so_ids_are_seen_in_order(app: Hookline) -> None:
    """Another writer holds an id it has not committed: a later id must not be visible before it."""
    recorder = app.recorder
    assert isinstance(recorder, BinaryInsertRecorder)
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    earlier = uuid4()
    with recorder.datastore.get_connection() as other:  # a transaction of another writer, open
        other.execute("BEGIN")
        other.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (%s, 1, 't', '')",
            (earlier,),
        )
        with ThreadPoolExecutor(1) as pool:
            later = pool.submit(recorder.insert_events, [StoredEvent(uuid4(), 1, "plain:Topic", b"x")])
            time.sleep(0.5)
            assert not later.done()
            other.execute("COMMIT")
            ids = later.result(timeout=10)

    assert ids is not None
    first = recorder.select_notifications(start=None, limit=10)
    assert [n.originator_id for n in first][-2] == earlier
    assert first[-1].id == ids[0]


def test_a_version_conflict_writes_nothing_of_its_batch(app: Hookline) -> None:
    recorder = app.recorder
    taken = uuid4()
    recorder.insert_events([StoredEvent(taken, 1, "plain:Topic", b"first")])
    fresh = uuid4()

    with pytest.raises(IntegrityError):
        recorder.insert_events(
            [StoredEvent(fresh, 1, "plain:Topic", b"new"), StoredEvent(taken, 1, "plain:Topic", b"again")]
        )

    assert recorder.select_events(fresh) == []
    assert recorder.select_events(taken) == [StoredEvent(taken, 1, "plain:Topic", b"first")]


def test_a_batch_of_rows_is_inserted_as_a_loop_of_single_inserts_would(app: Hookline) -> None:
    db = database_of(app.recorder)
    upsert = (
        "INSERT INTO t_rows (id, n, note, data) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET n = excluded.n, note = excluded.note"
    )
    with db.transaction(commit=True) as c:
        c.execute("CREATE TABLE t_rows (id TEXT PRIMARY KEY, n BIGINT, note TEXT, data BYTEA NOT NULL)")
        c.executemany(
            upsert, [("a", 1, None, b"\x00\\"), ("b", 2**40, "é, {x}", b""), ("c", None, None, b"z")]
        )
        c.executemany(upsert, [("b", 3, None, b"ignored"), ("d", -1, "new", b"d")])  # one updated, one new
        c.executemany(upsert, [("e", 5, "alone", b"e")])
        c.executemany("INSERT INTO t_rows (id, n, data) SELECT ?, ?, ?", [("f", 6, b"f"), ("g", 7, b"g")])
        c.execute("SELECT id, n, note, data FROM t_rows ORDER BY id")
        rows = [(i, n, note, bytes(data)) for i, n, note, data in c.fetchall()]

    assert rows == [
        ("a", 1, None, b"\x00\\"),
        ("b", 3, None, b""),
        ("c", None, None, b"z"),
        ("d", -1, "new", b"d"),
        ("e", 5, "alone", b"e"),
        ("f", 6, None, b"f"),
        ("g", 7, None, b"g"),
    ]


def test_a_batch_that_fails_writes_nothing(app: Hookline) -> None:
    db = database_of(app.recorder)
    with db.transaction(commit=True) as c:
        c.execute("CREATE TABLE t_strict (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
    with pytest.raises(IntegrityError), db.transaction(commit=True) as c:
        c.executemany("INSERT INTO t_strict (id, n) VALUES (?, ?)", [("a", 1), ("b", None)])
    with db.transaction(commit=False) as c:
        c.execute("SELECT count(*) FROM t_strict")
        assert c.fetchone() == (0,)


def test_a_batch_for_a_column_or_table_that_does_not_exist_is_refused_by_name(app: Hookline) -> None:
    db = database_of(app.recorder)
    rows = [("a", 1), ("b", 2)]
    with pytest.raises(ValueError, match="t_later has no column id, n"), db.transaction(commit=True) as c:
        c.executemany("INSERT INTO t_later (id, n) VALUES (?, ?)", rows)  # not created yet
    with db.transaction(commit=True) as c:
        c.execute("CREATE TABLE t_later (id TEXT PRIMARY KEY, n BIGINT)")
        with pytest.raises(ValueError, match="t_later has no column size"):
            c.executemany("INSERT INTO t_later (id, size) VALUES (?, ?)", rows)
    with db.transaction(commit=True) as c:  # created since: its columns are read, not the miss kept
        c.executemany("INSERT INTO t_later (id, n) VALUES (?, ?)", rows)
        c.execute("SELECT id, n FROM t_later ORDER BY id")
        assert c.fetchall() == rows
