"""graphql-core's execution with a shortcut for plain fields, the bulk of a long list's fields.

graphql-core executes every field alike: it looks the field up, builds a `GraphQLResolveInfo`, calls
the resolver (Strawberry's, which calls `getattr`), checks the result for an awaitable twice and
dispatches on the type to complete it: several microseconds a field. A list of 1 000 webhooks with
their health is some 20 000 fields, most of them read straight off an attribute. For such a field —
a Strawberry field without a resolver, arguments or field extensions (permissions are one), read with
`getattr`, no schema extension hooking `resolve` — of a scalar or enum type, of an object type with
no `is_type_of` whose selected fields are all such fields, or a list of either, the value is read and
completed here as graphql-core would complete it, and an object whose selected fields are all such
fields is built here in one loop. Whatever else happens (a null where the type forbids it, an
awaitable, a value the scalar refuses, a deferred fragment, a directive on a list) goes the whole way
through graphql-core, which reads the attributes again and answers, or fails, exactly as it always did.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, NamedTuple, cast

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Undefined,
    is_leaf_type,
)
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

STRAWBERRY_FIELD = "strawberry-definition"  # where Strawberry keeps its field in a GraphQLField's extensions


class PlainField(NamedTuple):
    read: attrgetter[Any]
    type: GraphQLLeafType | GraphQLObjectType  # the named type, or that of the list's items
    non_null: bool
    listed: bool  # a list of `type`
    item_non_null: bool


def _unwrapped(field_type: GraphQLOutputType) -> tuple[GraphQLOutputType, bool]:
    if isinstance(field_type, GraphQLNonNull):
        return field_type.of_type, True
    return field_type, False


def _plain(named: GraphQLOutputType) -> bool:
    """A type the shortcut completes: a scalar or enum, or an object type that checks no `is_type_of`."""
    return is_leaf_type(named) or (isinstance(named, GraphQLObjectType) and named.is_type_of is None)


def plain_fields(parent_type: GraphQLObjectType) -> dict[str, PlainField]:
    """The fields of `parent_type` that the shortcut may take, by name."""
    fields = {}
    for name, field in parent_type.fields.items():
        definition = (field.extensions or {}).get(STRAWBERRY_FIELD)
        if (
            definition is None
            or field.args
            # Strawberry marks the resolver it gives a field with no resolver and no extension.
            or not getattr(field.resolve, "_is_default", False)
            or definition.base_resolver is not None
            or definition.extensions
            or definition.default_resolver is not getattr
        ):
            continue
        named, non_null = _unwrapped(field.type)
        listed, item_non_null = isinstance(named, GraphQLList), False
        if isinstance(named, GraphQLList):
            named, item_non_null = _unwrapped(named.of_type)
        if _plain(named):
            read = attrgetter(definition.python_name)
            fields[name] = PlainField(read, named, non_null, listed, item_non_null)  # type: ignore[arg-type]
    return fields


# By type, made at a type's first execution: the schema is built once per process.
_PLAIN_FIELDS: dict[GraphQLObjectType, dict[str, PlainField]] = {}
_REFUSED = object()


def _fields_of(parent_type: GraphQLObjectType) -> dict[str, PlainField]:
    fields = _PLAIN_FIELDS.get(parent_type)
    if fields is None:
        fields = _PLAIN_FIELDS[parent_type] = plain_fields(parent_type)
    return fields


class LeafShortcutExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry always gives a manager; it holds the schema extensions that hook `resolve`.
        manager = self.middleware_manager
        self.shortcut = manager is None or not manager.middlewares

    def _complete(self, field: PlainField, field_details_list: Any, value: Any) -> Any:
        """The field's completed value, or _REFUSED when graphql-core must have it."""
        if value is None:
            return _REFUSED if field.non_null else None
        if not field.listed:
            return self._one(field, field_details_list, value)
        # A list: only a list or tuple, and never with a directive (`@stream`) on the field.
        if not isinstance(value, list | tuple) or any(d.node.directives for d in field_details_list):
            return _REFUSED
        completed: list[Any] = []
        for item in value:
            if item is None:
                if field.item_non_null:
                    return _REFUSED
                completed.append(None)
                continue
            one = self._one(field, field_details_list, item)
            if one is _REFUSED:
                return _REFUSED
            completed.append(one)
        return completed

    def _one(self, field: PlainField, field_details_list: Any, value: Any) -> Any:
        if self.is_awaitable(value):
            return _REFUSED
        if isinstance(field.type, GraphQLObjectType):
            grouped_field_set, defer_usages, _ = self.collect_subfields(field.type, field_details_list)
            if defer_usages:
                return _REFUSED
            return self._object(field.type, value, grouped_field_set)
        try:
            coerced = field.type.coerce_output_value(value)
        except Exception:  # graphql-core makes the error
            return _REFUSED
        return _REFUSED if coerced is None or coerced is Undefined else coerced

    def _object(self, parent_type: GraphQLObjectType, source: Any, grouped_field_set: Any) -> Any:
        """The object's selected fields when the shortcut takes every one, else _REFUSED."""
        fields = _fields_of(parent_type)
        results = {}
        for response_name, field_details_list in grouped_field_set.items():
            name = field_details_list[0].node.name.value
            if name == "__typename":
                results[response_name] = parent_type.name
                continue
            field = fields.get(name)
            if field is None:
                return _REFUSED
            value = self._complete(field, field_details_list, field.read(source))
            if value is _REFUSED:
                return _REFUSED
            results[response_name] = value
        return results

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if self.shortcut:
            results = self._object(parent_type, source_value, grouped_field_set)
            if results is not _REFUSED:
                return cast(dict[str, Any], results)
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any]:
        if self.shortcut:
            field = _fields_of(parent_type).get(field_details_list[0].node.name.value)
            if field is not None:
                value = self._complete(field, field_details_list, field.read(source))
                if value is not _REFUSED:
                    return value
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
