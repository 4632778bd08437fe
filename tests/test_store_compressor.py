"""Stored states are compressed (zlib) before they are encrypted, and stores written before that, whose
states are plain JSON, keep being read: on SQLite and on PostgreSQL."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import orjson
import pytest

import hookline.wiring
from bench.publisher import payload
from domain.events import Event
from harness.services import postgres_database
from hookline.settings import Settings
from hookline.wiring import build_application
from store.compressor import DICTIONARIES, FDICT, PassThroughZlibCompressor

COMPRESSOR = PassThroughZlibCompressor()


def test_a_state_is_compressed_and_read_back() -> None:
    state = orjson.dumps({"payload": payload(7, "run", 1.0)})
    stored = COMPRESSOR.compress(state)
    assert stored[:1] == b"\x78"
    assert len(stored) < len(state) * 0.7
    assert COMPRESSOR.decompress(stored) == state


def test_a_plain_json_state_is_read_as_it_is_and_one_zlib_would_not_shrink_is_kept_plain() -> None:
    written_before = orjson.dumps({"a": 1, "text": "x" * 300})
    assert COMPRESSOR.decompress(written_before) == written_before
    tiny = b'{"a":1}'
    assert len(zlib.compress(tiny)) > len(tiny)
    assert COMPRESSOR.compress(tiny) == tiny
    assert COMPRESSOR.decompress(COMPRESSOR.compress(tiny)) == tiny


def test_a_zlib_stream_never_begins_as_a_json_object() -> None:
    for level in range(10):
        assert zlib.compress(b'{"k":"v"}' * 40, level)[:1] != b"{"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.sqlite3"
        return
    with postgres_database() as url:
        yield url


def new_event(n: int) -> Event:
    return Event(
        organization_id=uuid4(),
        type="ticket.created",
        payload=payload(n, "compressor", 1.0),
        occurred_at=datetime(2026, 12, 8, tzinfo=UTC),
        idempotency_key=None,
        actor="tester",
    )


def test_a_store_written_before_compression_is_read_and_new_states_are_compressed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url)
    with monkeypatch.context() as before:  # the store's environment as it was: no compressor
        plain_env = hookline.wiring.store_env

        def without_compressor(s: Settings) -> dict[str, str]:
            env = plain_env(s)
            del env["COMPRESSOR_TOPIC"]
            return env

        before.setattr(hookline.wiring, "store_env", without_compressor)
        old_app = build_application(settings)
        assert old_app.mapper.compressor is None
        old = new_event(1)
        old_app.save(old)
        old_app.close()

    app = build_application(settings)
    try:
        assert isinstance(app.mapper.compressor, PassThroughZlibCompressor)
        assert app.mapper.cipher is not None
        new = new_event(2)
        app.save(new)
        states = {
            event.id: app.mapper.cipher.decrypt(app.recorder.select_events(event.id)[0].state)
            for event in (old, new)
        }
        assert states[old.id][:1] == b"{"  # written before: plain JSON under the cipher
        assert states[new.id][:1] == b"\x78"  # compressed
        assert len(states[new.id]) < len(orjson.dumps(new.payload))
        for event in (old, new):
            back: Event = app.repository.get(event.id)
            assert back.payload == event.payload
    finally:
        app.close()


def test_a_state_compressed_with_the_dictionary_names_it_and_one_without_is_still_read() -> None:
    state = orjson.dumps({"timestamp": "2026-12-08", "webhook_ids": ["96e7a12aa3d84b5f876a05d18ce11207"]})
    stored = COMPRESSOR.compress(state)
    assert stored[1] & FDICT
    assert int.from_bytes(stored[2:6], "big") in DICTIONARIES
    assert len(stored) < len(zlib.compress(state))
    assert COMPRESSOR.decompress(stored) == state
    assert COMPRESSOR.decompress(zlib.compress(state)) == state  # compressed without a dictionary
    unknown = bytearray(stored)
    unknown[2:6] = (zlib.adler32(b"another dictionary")).to_bytes(4, "big")
    with pytest.raises(ValueError, match="unknown dictionary"):
        COMPRESSOR.decompress(bytes(unknown))
