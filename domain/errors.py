"""The one exception tree of the domain; `gateway/errors.py`'s `CODES` gives each its GraphQL code.

HooklineError
├── InvalidInput        every problem found in the input (field, message)
├── NotFound            absent, deleted, or another organisation's
├── Conflict            stale expected version, duplicate configuration
├── Forbidden           the caller's role may not do this
└── Unauthenticated     no key, or an unknown or revoked one

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
    pass


class InvalidInput(HooklineError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems) or "invalid input")


class NotFound(HooklineError):
    pass


class Conflict(HooklineError):
    pass


class Forbidden(HooklineError):
    pass


class Unauthenticated(HooklineError):
    pass


class RenderedBodyTooLarge(Exception):
    """A template rendered for one event would pass the rendered-body limit; rendering stopped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the rendered body is larger than HOOKLINE_MAX_RENDERED_BYTES ({limit} bytes)")
