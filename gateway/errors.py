"""The one place where exceptions become GraphQL errors with `extensions.code`; nothing else escapes.

Our domain errors keep their message and gain their code (and `fields` for BAD_USER_INPUT); errors of the
GraphQL layer itself (syntax, validation, variable coercion) are BAD_USER_INPUT; anything else is logged
here with its traceback and answered as a generic internal error.
"""

from __future__ import annotations

from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from domain.errors import Conflict, Forbidden, HooklineError, InvalidInput, NotFound, Unauthenticated

log = structlog.get_logger("hookline.gateway")

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"
# The contract's code for each error of the domain; a HooklineError not named here is INTERNAL.
CODES: dict[type[HooklineError], str] = {
    InvalidInput: BAD_USER_INPUT,
    NotFound: "NOT_FOUND",
    Conflict: "CONFLICT",
    Forbidden: "FORBIDDEN",
    Unauthenticated: "UNAUTHENTICATED",
}
_OURS = frozenset(CODES.values())


def code_of(error: HooklineError) -> str:
    return next((CODES[kind] for kind in type(error).__mro__ if kind in CODES), INTERNAL)


def bad_input(field: str, message: str) -> dict[str, Any]:
    """The extensions of a BAD_USER_INPUT error with one problem."""
    return {"code": BAD_USER_INPUT, "fields": [{"field": field, "message": message}]}


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """An error of the plain-HTTP endpoints: `{"error": {"code", "message", "fields"?}}`."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def plain_error(error: HooklineError) -> dict[str, Any]:
    """A domain error in the plain-HTTP shape, with the code (and fields) GraphQL would give it."""
    extensions = _extensions(error)
    return error_body(extensions["code"], str(error), extensions.get("fields"))


def _extensions(error: HooklineError) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": code_of(error)}
    if isinstance(error, InvalidInput):
        extensions["fields"] = [{"field": p.field, "message": p.message} for p in error.problems]
    return extensions


def to_graphql_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, HooklineError):
        return GraphQLError(
            str(original), nodes=error.nodes, path=error.path, extensions=_extensions(original)
        )
    if original is None or isinstance(original, GraphQLError):
        # Raised by graphql-core while parsing, validating or coercing: safe to show as it is.
        code = error.extensions.get("code") if error.extensions else None
        if code in _OURS:
            return error
        return GraphQLError(
            error.message, nodes=error.nodes, path=error.path, extensions=bad_input("query", error.message)
        )
    if isinstance(original, UnicodeError):
        # A string with lone surrogates (valid JSON, not valid Unicode) cannot be stored or compared.
        message = "a string argument is not valid Unicode text"
        return GraphQLError(
            message, nodes=error.nodes, path=error.path, extensions=bad_input("input", message)
        )
    if isinstance(original, PersistenceError):
        log.error(
            "the store refused a write or a read",
            path=error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        return GraphQLError(
            "the store could not carry this out (it may be full or read-only); nothing was stored",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": INTERNAL},
        )
    log.error(
        "unexpected error in a GraphQL operation",
        path=error.path,
        exc_info=(type(original), original, original.__traceback__),
    )
    return GraphQLError(
        "internal error; it has been logged",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": INTERNAL},
    )


class ErrorCodes(MaskErrors):
    """Gives every error a code and masks the ones that are not ours."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [to_graphql_error(error) for error in errors]
