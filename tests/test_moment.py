"""`moment`, the sortable UTC text of times in the read model's tables, is strftime's text exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from store.sql import moment

ZONES = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
TIMES = st.datetimes(min_value=datetime(1001, 1, 2), max_value=datetime(9998, 12, 30), timezones=ZONES)


@given(TIMES)
def test_moment_is_strftimes_text_of_the_utc_time(value: datetime) -> None:
    assert moment(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
