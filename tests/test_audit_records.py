"""An audit record's data: plain JSON values, ids and times as text, secrets redacted at any depth."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.audit import REDACTED, SECRET_FIELDS, jsonable


class Colour(Enum):
    RED = "red"


class Status(StrEnum):
    OK = "ok"


def meaning(value: Any) -> Any:
    """What `jsonable` promises, written plainly."""
    if isinstance(value, Mapping):
        return {str(k): REDACTED if k in SECRET_FIELDS else meaning(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [meaning(v) for v in value]
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


keys = st.sampled_from(sorted(SECRET_FIELDS)) | st.text(max_size=5) | st.integers(0, 3)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.uuids()
    | st.datetimes(timezones=st.just(UTC))
    | st.decimals(allow_nan=False)
    | st.sampled_from([Colour.RED, Status.OK])
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
        | st.dictionaries(keys, inner, max_size=3).map(OrderedDict)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(values)
def test_jsonable_keeps_its_meaning_for_every_kind_of_value(value: Any) -> None:
    converted = jsonable(value)
    assert converted == meaning(value)
    assert type(converted) is type(meaning(value))


def test_secrets_are_redacted_at_any_depth_and_text_stays_text() -> None:
    value = {"headers": [{"name": "X", "secret": "s3"}], "token": "t", "status": Status.OK, 1: "one"}
    expected = {"headers": [{"name": "X", "secret": REDACTED}], "token": REDACTED, "status": "ok", "1": "one"}
    assert jsonable(value) == expected
    assert type(jsonable(value)["status"]) is str
