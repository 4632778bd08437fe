"""How deeply a JSON value nests, and the limit every stored value keeps to.

A stored value is written again inside larger documents (an event inside its audit record, a filter
inside its webhook's), and orjson refuses to write more than 255 levels: a value accepted near that
limit would then stop every reader of the log. 64 levels is far beyond any real payload.
"""

from __future__ import annotations

from typing import Any

MAX_NESTING = 64


def nesting(value: Any) -> int:
    """How many arrays and objects deep a JSON value goes (a scalar: 0), without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def too_deep(value: Any) -> str | None:
    """The problem with a value nested past the limit, or None."""
    if nesting(value) > MAX_NESTING:
        return f"must be nested at most {MAX_NESTING} levels deep"
    return None
