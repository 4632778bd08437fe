"""An attempt as stored in a delivery's events: the same data `dataclasses.asdict` would give."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from domain.deliveries import Attempt


def test_an_attempts_data_is_its_fields_and_reads_back_as_the_same_attempt() -> None:
    attempts = [
        Attempt(1, datetime(2026, 11, 24, 9, 30, tzinfo=UTC), 12.5, 503, None, "busy", "7"),
        Attempt(2, datetime.now(UTC), 0.25, None, "connection refused", None),
    ]
    for attempt in attempts:
        data = attempt.to_data()
        # `erased` and `erased_at` are stored only once an erasure set them (`store.erasure`)
        fields = {k: v for k, v in asdict(attempt).items() if k not in ("erased", "erased_at")}
        assert data == fields
        assert list(data) == list(fields)  # same fields in the same order
        assert Attempt.from_data(data) == attempt
        erased = {**data, "response_body": None, "erased": True, "erased_at": datetime.now(UTC)}
        assert Attempt.from_data(erased).erased
        data["number"] = 99  # a copy: the attempt itself is not changed
        assert attempt.number != 99
