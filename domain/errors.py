"""The one exception tree of the domain; the gateway maps it to GraphQL error codes in one place.

HooklineError
├── InvalidInput        BAD_USER_INPUT, with every problem found (field, message)
├── NotFound            NOT_FOUND: absent, deleted, or another organisation's
├── Conflict            CONFLICT: stale expected version, duplicate configuration
├── Forbidden           FORBIDDEN: the caller's role may not do this
└── Unauthenticated     UNAUTHENTICATED: no key, or an unknown or revoked one

RenderedBodyTooLarge    not a caller's error: the attempt of a delivery (or a test) fails with it
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: the input field (GraphQL name, dotted) and why."""

    field: str
    message: str


class HooklineError(Exception):
    code = "INTERNAL_SERVER_ERROR"


class InvalidInput(HooklineError):
    code = "BAD_USER_INPUT"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems) or "invalid input")


class NotFound(HooklineError):
    code = "NOT_FOUND"


class Conflict(HooklineError):
    code = "CONFLICT"


class Forbidden(HooklineError):
    code = "FORBIDDEN"


class Unauthenticated(HooklineError):
    code = "UNAUTHENTICATED"


class RenderedBodyTooLarge(Exception):
    """A template rendered for one event would pass the rendered-body limit; rendering stopped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the rendered body is larger than HOOKLINE_MAX_RENDERED_BYTES ({limit} bytes)")
