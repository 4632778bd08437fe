"""The store's orjson transcoder writes what eventsourcing's JSON transcoder reads back unchanged."""

from __future__ import annotations

import enum
import math
from collections import OrderedDict, namedtuple
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoding,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import Event
from hookline.settings import Settings
from hookline.wiring import build_application
from store.transcoder import FastJSONTranscoder


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


Point = namedtuple("Point", "x y")


class Span:
    """A registered type whose encoding holds other registered types."""

    def __init__(self, start: datetime, owner: UUID) -> None:
        self.start, self.owner = start, owner

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Span) and (self.start, self.owner) == (other.start, other.owner)


class SpanAsDict(Transcoding):
    type = Span
    name = "span"

    def encode(self, obj: Span) -> dict[str, Any]:
        return {"start": obj.start, "owner": obj.owner}

    def decode(self, data: dict[str, Any]) -> Span:
        return Span(data["start"], data["owner"])


def transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    library, fast = JSONTranscoder(), FastJSONTranscoder()
    for transcoder in (library, fast):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), SpanAsDict()):
            transcoder.register(transcoding)
    return library, fast


LIBRARY, FAST = transcoders()


def read_back(value: Any) -> tuple[Any, Any]:
    """What the library reads from each transcoder's bytes."""
    return LIBRARY.decode(LIBRARY.encode(value)), LIBRARY.decode(FAST.encode(value))


def same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down (and NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats()  # NaN and infinities too
    | st.text()
    | st.uuids()
    | st.datetimes(timezones=st.just(UTC) | st.just(timezone(timedelta(hours=-5))))
    | st.decimals(allow_nan=False)
    | st.builds(Span, st.datetimes(timezones=st.just(UTC)), st.uuids())
    | st.sampled_from([Colour.RED, Size.LARGE])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_whatever_the_library_writes_and_reads_the_fast_transcoder_writes_for_it_to_read_the_same(
    state: dict[str, Any],
) -> None:
    try:
        expected = LIBRARY.decode(LIBRARY.encode(state))
    except UnicodeEncodeError:  # a lone surrogate: the library cannot store it, nor can the fast one
        with pytest.raises(UnicodeEncodeError):
            FAST.encode(state)
        return
    assert same(LIBRARY.decode(FAST.encode(state)), expected)


def test_an_event_state_goes_through_orjson_and_reads_back_with_its_types() -> None:
    occurred = datetime(2026, 11, 24, 6, 0, 0, 123456, tzinfo=UTC)
    owner = uuid4()
    state = {
        "organization_id": owner,
        "occurred_at": occurred,
        "payload": {"seq": 1, "sent_at": 1764000000.123456, "tags": ["a", "b"], "ids": [owner]},
        "webhook_ids": [owner],
        "status": Colour.RED,
        "amount": Decimal("12.50"),
        "window": Span(occurred, owner),
    }
    written = FAST.encode(state)
    back = LIBRARY.decode(written)
    assert back["organization_id"] == owner
    assert isinstance(back["organization_id"], UUID)
    assert back["occurred_at"] == occurred
    assert back["payload"]["ids"] == [owner]
    assert back["payload"]["sent_at"] == 1764000000.123456
    assert back["status"] == "red"
    assert type(back["status"]) is str
    assert back["amount"] == Decimal("12.50")
    assert back["window"] == Span(occurred, owner)


@pytest.mark.parametrize(
    "value",
    [
        {"n": float("nan")},
        {"n": [float("inf")]},
        {"big": 2**64},
        {"keys": {1: "one", 2.5: "x", None: "none", False: "no"}},
        {"ordered": OrderedDict(b=1, a=2)},
        {"point": Point(1, owner := uuid4()), "owner": owner},
    ],
    ids=["nan", "infinity", "beyond-64-bits", "non-string-keys", "dict-subclass", "namedtuple"],
)
def test_what_orjson_would_write_otherwise_goes_through_the_json_module(value: dict[str, Any]) -> None:
    assert FAST.encode(value) == LIBRARY.encode(value)
    library, fast = read_back(value)
    assert same(fast, library)


def test_a_type_nobody_registered_is_refused_as_the_library_refuses_it() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        LIBRARY.encode({"when": datetime.now(UTC).date()})
    with pytest.raises(TranscodingNotRegisteredError, match="date"):
        FAST.encode({"when": datetime.now(UTC).date()})


def test_the_application_stores_events_with_the_fast_transcoder(tmp_path: Path) -> None:
    app = build_application(Settings(database_url=f"sqlite:///{tmp_path}/store.sqlite3"))
    try:
        assert type(app.mapper.transcoder) is FastJSONTranscoder
        occurred = datetime(2026, 11, 24, tzinfo=UTC)
        event = Event(
            organization_id=uuid4(),
            type="ticket.created",
            payload={"n": 1, "ratio": 0.25},
            occurred_at=occurred,
            idempotency_key=None,
            actor="tester",
        )
        app.save(event)
        stored = app.recorder.select_events(event.id)[0]
        assert app.mapper.cipher is not None
        assert app.mapper.compressor is not None
        state = app.mapper.compressor.decompress(app.mapper.cipher.decrypt(stored.state))
        assert LIBRARY.decode(state)["occurred_at"] == occurred
        back: Event = app.repository.get(event.id)
        assert (back.organization_id, back.occurred_at, back.payload) == (
            event.organization_id,
            occurred,
            {"n": 1, "ratio": 0.25},
        )
    finally:
        app.close()
