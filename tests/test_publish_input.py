"""`PublishEventInput` is built straight from graphql-core's coerced value (`built_directly`): the
same objects as Strawberry's field-by-field conversion, through the real schema."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryList

from gateway.inputs import HeaderInput, PublishEventInput, built_directly
from gateway.schema import build_schema

VALUES: list[dict[str, Any]] = [
    {"type": "a.b", "payload": {"n": 1}},
    {"type": "a.b", "payload": None, "idempotencyKey": None, "occurredAt": None},
    {
        "type": "a.b",
        "payload": [1, "x"],
        "idempotencyKey": "k-1",
        "occurredAt": datetime(2026, 1, 2, tzinfo=UTC),
    },
    {"type": "", "payload": "text", "idempotencyKey": ""},
]


def convert(value: list[dict[str, Any]]) -> list[PublishEventInput]:
    schema = build_schema()
    converted = convert_argument(
        value, StrawberryList(PublishEventInput), schema.schema_converter.scalar_registry, schema.config
    )
    assert isinstance(converted, list)
    return converted


def test_the_direct_build_equals_strawberrys_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = convert(VALUES)
    monkeypatch.setattr(PublishEventInput.__strawberry_definition__, "from_input", None)  # type: ignore[attr-defined]
    field_by_field = convert(VALUES)

    assert [dataclasses.asdict(i) for i in direct] == [dataclasses.asdict(i) for i in field_by_field]
    assert [type(i) for i in direct] == [PublishEventInput] * len(VALUES)
    assert direct[0].idempotency_key is None
    assert direct[2].occurred_at == datetime(2026, 1, 2, tzinfo=UTC)


def test_an_input_with_a_field_that_needs_converting_is_refused() -> None:
    @strawberry.input
    class Nested:
        name: str
        headers: list[HeaderInput]

    with pytest.raises(TypeError, match=r"Nested\.headers is not a scalar"):
        built_directly(Nested)
