"""graphql-core's execution with a shortcut for plain leaf fields, the bulk of a long list's fields.

graphql-core executes every field alike: it looks the field up, builds a `GraphQLResolveInfo`, calls
the resolver (Strawberry's, which calls `getattr`), checks the result for an awaitable twice and
dispatches on the type to complete it: several microseconds a field. A list of 1 000 webhooks with
their health is some 20 000 fields, most of them scalars read straight off an attribute. For such a
field — a Strawberry field without a resolver, arguments or field extensions (permissions are one),
read with `getattr`, of a scalar or enum type, no schema extension hooking `resolve` — the attribute
is read and coerced here as `complete_leaf_value` would; an object whose selected fields are all such
fields is built here in one loop. Whatever else happens (a null where the type forbids it, an
awaitable, a value the scalar refuses) goes the whole way through graphql-core, which reads the
attributes again and answers, or fails, exactly as it always did.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, NamedTuple

from graphql import GraphQLLeafType, GraphQLNonNull, GraphQLObjectType, Undefined, is_leaf_type
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

STRAWBERRY_FIELD = "strawberry-definition"  # where Strawberry keeps its field in a GraphQLField's extensions


class PlainLeaf(NamedTuple):
    read: attrgetter[Any]
    type: GraphQLLeafType
    non_null: bool


def plain_leaves(parent_type: GraphQLObjectType) -> dict[str, PlainLeaf]:
    """The fields of `parent_type` that the shortcut may take, by name."""
    leaves = {}
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
        non_null = isinstance(field.type, GraphQLNonNull)
        named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        if is_leaf_type(named):
            leaves[name] = PlainLeaf(attrgetter(definition.python_name), named, non_null)
    return leaves


# By type, made at a type's first execution: the schema is built once per process.
_PLAIN_LEAVES: dict[GraphQLObjectType, dict[str, PlainLeaf]] = {}
_REFUSED = object()


def _leaves_of(parent_type: GraphQLObjectType) -> dict[str, PlainLeaf]:
    leaves = _PLAIN_LEAVES.get(parent_type)
    if leaves is None:
        leaves = _PLAIN_LEAVES[parent_type] = plain_leaves(parent_type)
    return leaves


class LeafShortcutExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry always gives a manager; it holds the schema extensions that hook `resolve`.
        manager = self.middleware_manager
        self.shortcut = manager is None or not manager.middlewares

    def _value(self, leaf: PlainLeaf, source: Any) -> Any:
        """The field's completed value, or _REFUSED when graphql-core must have it."""
        value = leaf.read(source)
        if value is None:
            return _REFUSED if leaf.non_null else None
        if self.is_awaitable(value):
            return _REFUSED
        try:
            coerced = leaf.type.coerce_output_value(value)
        except Exception:  # graphql-core makes the error
            return _REFUSED
        return _REFUSED if coerced is None or coerced is Undefined else coerced

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if self.shortcut:
            leaves = _leaves_of(parent_type)
            results = {}
            for response_name, field_details_list in grouped_field_set.items():
                leaf = leaves.get(field_details_list[0].node.name.value)
                if leaf is None:
                    break
                value = self._value(leaf, source_value)
                if value is _REFUSED:
                    break
                results[response_name] = value
            else:
                return results
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
            leaf = _leaves_of(parent_type).get(field_details_list[0].node.name.value)
            if leaf is not None:
                value = self._value(leaf, source)
                if value is not _REFUSED:
                    return value
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
