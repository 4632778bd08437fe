"""`publishEvent` answered without Strawberry's execution: the request a source system sends for each
event, made as cheap as GraphQL allows.

A document is examined once (then remembered by its text): it qualifies when it validates against the
schema and is exactly one mutation whose one field is `publishEvent(input: $variable)` of a
`PublishEventInput!` variable, selecting only `eventId`, `duplicate` and `__typename` (aliases allowed),
with no fragment and no directive. For such a document the request's variables are coerced by graphql-core
as execution would coerce them, the event is published through the same batched `publish`, and the
answer is built as execution would build it: the same data, and the same errors (message, locations,
path, extensions) made by the same `to_graphql_error`. Anything else, including variables that do not
coerce, goes the whole way through Strawberry (`None` here), which answers it as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import LRUCache
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    VariableDefinitionNode,
    VariableNode,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.validation import ASTValidationRule
from starlette.requests import Request

from domain.events import Publication
from gateway.context import Context
from gateway.errors import to_graphql_error
from gateway.inputs import utc
from gateway.limits import is_json

# Longer documents are not examined (each costs a parse and a validation once); they go through Strawberry.
MAX_QUERY_CHARS = 2000
DOCUMENTS_KEPT = 256
SELECTABLE = frozenset({"eventId", "duplicate", "__typename"})
STREAMING = ("multipart/mixed", "text/event-stream")  # asked for: Strawberry's transports decide

Answer = dict[str, Any]


@dataclass(frozen=True)
class PreparedPublish:
    """What a qualifying document asks for: the variable to read, the field's response key, and the
    response key and field of each selection, in order."""

    operation_name: str | None
    variable: VariableDefinitionNode
    field: FieldNode
    selections: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return self.field.alias.value if self.field.alias else self.field.name.value


def prepare(
    schema: GraphQLSchema, rules: list[type[ASTValidationRule]], query: str
) -> PreparedPublish | None:
    """The document's `PreparedPublish` when it qualifies (see the module's docstring), else None."""
    try:
        document = parse(query, no_location=False)
    except GraphQLError:
        return None
    if validate(schema, document, [*specified_rules, *rules]):
        return None
    if len(document.definitions) != 1:
        return None
    operation = document.definitions[0]
    if not isinstance(operation, OperationDefinitionNode) or operation.operation != OperationType.MUTATION:
        return None
    variables = operation.variable_definitions or ()
    if operation.directives or len(variables) != 1:
        return None
    (variable,) = variables
    kind = variable.type
    if not (
        isinstance(kind, NonNullTypeNode)
        and isinstance(kind.type, NamedTypeNode)
        and kind.type.name.value == "PublishEventInput"
        and variable.default_value is None
        and not variable.directives
    ):
        return None
    if len(operation.selection_set.selections) != 1:
        return None
    field = operation.selection_set.selections[0]
    if not isinstance(field, FieldNode):
        return None
    arguments = field.arguments or ()
    if not (
        field.name.value == "publishEvent"
        and not field.directives
        and len(arguments) == 1
        and arguments[0].name.value == "input"
        and isinstance(arguments[0].value, VariableNode)
        and field.selection_set is not None
    ):
        return None
    selections = []
    for selected in field.selection_set.selections:
        if not (
            isinstance(selected, FieldNode)
            and selected.name.value in SELECTABLE
            and not selected.directives
            and not selected.arguments
            and selected.selection_set is None
        ):
            return None
        key = selected.alias.value if selected.alias else selected.name.value
        selections.append((key, selected.name.value))
    name = operation.name.value if operation.name else None
    return PreparedPublish(name, variable, field, tuple(selections))


class PreparedPublishing:
    """Answers qualifying `publishEvent` requests; `encode` is the view's JSON encoder, so that the
    bytes are the ones Strawberry would send."""

    def __init__(
        self,
        schema: GraphQLSchema,
        rules: list[type[ASTValidationRule]],
        encode: Callable[[object], str | bytes],
    ) -> None:
        self.schema = schema
        self.rules = rules
        self.encode = encode
        self._documents: LRUCache[str, PreparedPublish | None] = LRUCache(maxsize=DOCUMENTS_KEPT)

    async def answer(self, request: Request, context: Callable[[], Awaitable[Context]]) -> Answer | None:
        """The answer to a qualifying request, or None: let Strawberry answer it."""
        if not is_json(request.headers.get("content-type")):
            return None
        accept = request.headers.get("accept", "")
        if any(kind in accept for kind in STREAMING):
            return None
        body = orjson.loads(await request.body())  # BodyLimit checked that it parses
        if not isinstance(body, dict):
            return None
        query, variables = body.get("query"), body.get("variables")
        if not isinstance(query, str) or not isinstance(variables, dict) or len(query) > MAX_QUERY_CHARS:
            return None
        prepared = self._prepared(query)
        if prepared is None or body.get("operationName") not in (None, prepared.operation_name):
            return None
        coerced = get_variable_values(self.schema, [prepared.variable], variables)
        if isinstance(coerced, list):
            return None  # errors: Strawberry's execution words them
        caller = await context()
        try:
            await caller.principal()
        except Exception as error:  # as HooklineGraphQL.execute_operation answers it
            return {"data": None, "errors": [refused(error).formatted]}
        try:
            publication = _publication(coerced.coerced[prepared.variable.variable.name.value])
            event_id, duplicate = await caller.publish(publication)
        except Exception as error:  # as execution locates a resolver's error, then ErrorCodes maps it
            located = GraphQLError(
                str(error), nodes=[prepared.field], path=[prepared.key], original_error=error
            )
            return {"data": None, "errors": [to_graphql_error(located).formatted]}
        values = {"eventId": str(event_id), "duplicate": duplicate, "__typename": "PublishedEvent"}
        return {"data": {prepared.key: {key: values[name] for key, name in prepared.selections}}}

    def _prepared(self, query: str) -> PreparedPublish | None:
        if "publishEvent" not in query:  # every other document, at the price of a substring search
            return None
        try:
            return self._documents[query]
        except KeyError:
            prepared = self._documents[query] = prepare(self.schema, self.rules, query)
            return prepared


def refused(error: Exception) -> GraphQLError:
    """The error of a request whose caller could not be authenticated (no path: nothing ran)."""
    return to_graphql_error(GraphQLError(str(error), original_error=error))


def _publication(given: dict[str, Any]) -> Publication:
    return Publication(
        type=given["type"],
        payload=given["payload"],
        idempotency_key=given.get("idempotencyKey"),
        occurred_at=utc(given.get("occurredAt")),
    )
