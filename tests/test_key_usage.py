"""When a key was last used: noted per request in memory, written at most once per interval per key
(a minute; shorter here, given to the constructor), into a table of the store's own database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from gateway.usage import KeyUsage
from store.usage import KeyUsageTable
from tests.apps import opened


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def usage_table(directory: Path) -> Iterator[KeyUsageTable]:
    """The table in the store of an application on a SQLite file in `directory`."""
    store = opened(directory)
    try:
        yield KeyUsageTable(store.read_model.db)
    finally:
        store.app.close()


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture
def table(tmp_path: Path) -> Iterator[KeyUsageTable]:
    with usage_table(tmp_path) as table:
        yield table


def test_a_keys_first_use_is_written_at_once_and_later_ones_at_most_once_an_interval(
    table: KeyUsageTable,
) -> None:
    clock = Clock()
    usage = KeyUsage(table.record, table.last_used, every=10.0, clock=clock)
    key, other = uuid4(), uuid4()
    start = clock.now

    def use(seconds: float, *keys: UUID) -> None:
        clock.now = start + seconds
        for key_id in keys:
            usage.used(key_id)

    def flushed() -> dict[str, datetime | None]:
        asyncio.run(usage.flush())
        found = table.last_used([key, other])
        return {"key": found.get(key), "other": found.get(other)}

    use(0, key)
    assert flushed() == {"key": at(start), "other": None}
    use(3, key, other)
    use(7, key)
    assert flushed() == {"key": at(start), "other": at(start + 3)}, "within the interval: not moved"
    use(9.9, key)
    assert flushed() == {"key": at(start), "other": at(start + 3)}
    use(10, key)
    use(12, other)
    assert flushed() == {"key": at(start + 10), "other": at(start + 3)}
    use(13, other)
    assert flushed() == {"key": at(start + 10), "other": at(start + 13)}
    assert flushed() == {"key": at(start + 10), "other": at(start + 13)}, "unused: nothing to write"


def test_two_gateways_writing_one_key_move_its_last_use_at_most_once_an_interval(
    table: KeyUsageTable,
) -> None:
    key = uuid4()
    first = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    every = timedelta(seconds=60)

    table.record({key: first}, every)
    table.record({key: first + timedelta(seconds=30)}, every)  # another gateway, within the minute
    assert table.last_used([key]) == {key: first}
    table.record({key: first + timedelta(seconds=61)}, every)
    assert table.last_used([key]) == {key: first + timedelta(seconds=61)}
    table.record({key: first}, every)  # an older use never moves it back
    assert table.last_used([key]) == {key: first + timedelta(seconds=61)}
    assert table.last_used([]) == {}


def test_the_table_survives_a_new_read_model_on_the_same_store(tmp_path: Path) -> None:
    key = uuid4()
    with usage_table(tmp_path) as table:
        table.record({key: at(1_800_000_000)}, timedelta(seconds=60))
    with usage_table(tmp_path) as table:
        assert table.last_used([key]) == {key: at(1_800_000_000)}
