"""`gateway.execution.LeafShortcutExecution` answers every document exactly as Strawberry's own execution
does: the same data and the same errors, whether a field takes the shortcut or not (nulls where the type
forbids them, values a scalar refuses, awaitables, aliases, fragments, directives, permissions, nested
objects and lists, a schema extension that hooks `resolve`); and a list of webhooks with their health
through the real gateway."""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import strawberry
from graphql import GraphQLObjectType
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.scalars import JSON

from gateway.execution import LeafShortcutExecution, plain_fields
from tests.support import running_server
from tests.test_distributed import create_webhook


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


class Nobody(BasePermission):
    message = "not allowed"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


async def later(value: Any) -> Any:
    return value


@strawberry.type
class Item:
    number: int
    maybe: int | None
    required: int  # given None on purpose by some items: an error, as graphql-core makes it
    ratio: float
    text: str
    at: datetime
    colour: Colour
    data: JSON
    awaited: int  # given a coroutine: graphql-core awaits it
    awaited_data: JSON  # likewise, of a scalar that would take anything
    hidden: int = strawberry.field(permission_classes=[Nobody], default=0)
    children: list[Item | None] = strawberry.field(default_factory=list)
    tags: list[str] = strawberry.field(default_factory=list)

    @strawberry.field
    def doubled(self) -> int:
        return self.number * 2


def item(n: int, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "number": n,
        "maybe": None,
        "required": n,
        "ratio": n / 3,
        "text": f"item {n}",
        "at": datetime(2026, 12, 8, 2, n % 60, tzinfo=UTC),
        "colour": Colour.RED,
        "data": {"n": n},
        "awaited": later(n),
        "awaited_data": later({"n": n}),
    }
    return Item(**{**values, **changes})


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:  # an item in error is null, not the whole list
        return [
            item(1, children=[item(11), item(12, required=None)]),
            item(2, number="not a number"),  # Int refuses it
            item(3, ratio=float("nan"), tags=["a", None]),  # Float refuses it, and a null tag
            item(4, tags=["b", "c"]),
        ]


class Shouting(SchemaExtension):
    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        result = _next(root, info, *args, **kwargs)
        return result.upper() if isinstance(result, str) else result


DOCUMENTS = [
    "{ items { number maybe ratio text at colour data } }",
    "{ items { number required children { number required } } }",
    "{ items { n: number again: number __typename awaited awaitedData doubled } }",
    "{ items { ...F children { ...F } } } fragment F on Item { text number @include(if: false) ratio }",
    "{ items { number hidden } }",
    "{ items { tags __typename children { tags t: __typename children { number } } } }",
    "{ items { children { number } children { text } } }",
    "query($skip: Boolean!) { items { number @skip(if: $skip) text } }",
]


def answer(schema: strawberry.Schema, document: str) -> tuple[Any, list[Any]]:
    result = asyncio.run(schema.execute(document, variable_values={"skip": True}))
    assert result.data is not None, result.errors
    assert result.data["items"] is not None, result.errors
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or [])
    return result.data, errors


# Items whose `awaited` is not selected leave their coroutine unawaited, as any unselected field would.
@pytest.mark.filterwarnings("ignore:coroutine 'later' was never awaited")
@pytest.mark.parametrize("extensions", [[], [Shouting]], ids=["plain", "resolve-hook"])
@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_shortcut_answers_as_strawberry_does(document: str, extensions: list[Any]) -> None:
    plain = strawberry.Schema(query=Query, extensions=extensions)
    shortcut = strawberry.Schema(
        query=Query, extensions=extensions, execution_context_class=LeafShortcutExecution
    )
    assert answer(shortcut, document) == answer(plain, document)


def test_only_plain_leaf_fields_take_the_shortcut() -> None:
    schema = strawberry.Schema(query=Query)
    item_type = schema._schema.type_map["Item"]
    assert isinstance(item_type, GraphQLObjectType)
    assert set(plain_fields(item_type)) == {
        "number",
        "maybe",
        "required",
        "ratio",
        "text",
        "at",
        "colour",
        "data",
        "awaited",
        "awaitedData",
        "children",
        "tags",
    }  # not `hidden` (a permission) nor `doubled` (a resolver)


def test_webhooks_listed_with_their_health_through_the_gateway(tmp_path: Path) -> None:
    """The list takes the health loaded with the page; one webhook still loads it on its own."""
    with running_server(tmp_path, "embedded") as server:
        admin = server.key("org-a", "admin")
        other = server.key("org-b", "admin")
        ids = [create_webhook(server, admin, f"https://hooks.example.com/{i}")["id"] for i in range(3)]
        theirs = create_webhook(server, other, "https://hooks.example.com/b")["id"]
        fields = "id health { attempts successRate consecutiveFailures statusCodes { statusCode count } }"
        listed = server.gql(admin, f"{{ webhooks(first: 10) {{ edges {{ node {{ {fields} }} }} }} }}").ok()
        nodes = [edge["node"] for edge in listed["webhooks"]["edges"]]
        assert sorted(node["id"] for node in nodes) == sorted(ids)  # organisations stay apart
        never: dict[str, Any] = {
            "attempts": 0,
            "successRate": None,
            "consecutiveFailures": 0,
            "statusCodes": [],
        }
        assert all(node["health"] == never for node in nodes)
        via_fragment = server.gql(
            admin,
            "{ webhooks(first: 10) { edges { ...E } } }"
            " fragment E on WebhookEdge { node { h: health { attempts } } }",
        ).ok()
        assert [edge["node"]["h"] for edge in via_fragment["webhooks"]["edges"]] == [{"attempts": 0}] * 3
        one = server.gql(admin, f'{{ webhook(id: "{ids[0]}") {{ {fields} }} }}').ok()["webhook"]
        assert one["health"] == never
        assert server.gql(admin, f'{{ webhook(id: "{theirs}") {{ {fields} }} }}').ok()["webhook"] is None
