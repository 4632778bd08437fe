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
        assert data == asdict(attempt)
        assert list(data) == list(asdict(attempt))  # same fields in the same order
        assert Attempt.from_data(data) == attempt
        data["number"] = 99  # a copy: the attempt itself is not changed
        assert attempt.number != 99
