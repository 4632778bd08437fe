"""The event-type catalogue: the built-in types, the variables a type declares, the rules for defining one.

A *defined* event type declares the variables a payload template may use: the envelope that Hookline adds to
every event, then every key and dotted path of the type's sample payload.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import Problem

ENVELOPE_VARIABLES = ("event_id", "event_type", "organization_id", "organization_name", "timestamp")
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 1000
MAX_SAMPLE_BYTES = 64 * 1024
MAX_SAMPLE_DEPTH = 10

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[._][a-z][a-z0-9]*)*")
# A key becomes one segment of a dotted path, so it may hold neither dots nor anything a placeholder
# (`{{name}}`, `#name`) could not spell.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class EventTypeSpec:
    """An event type with a declared shape: its name, what it means, a sample payload and its variables."""

    name: str
    description: str | None
    sample_payload: dict[str, Any]
    variables: tuple[str, ...]

    @classmethod
    def of(cls, name: str, description: str | None, sample_payload: Mapping[str, Any]) -> EventTypeSpec:
        # A private copy, so that the variables stay true to the sample whatever the caller does next.
        payload = copy.deepcopy(dict(sample_payload))
        return cls(name, description, payload, variables_of(payload))


def variables_of(sample_payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The variables a type with this sample payload declares, each once, in this order.

    First the envelope (`ENVELOPE_VARIABLES`), then every key and dotted path of the payload in document
    order: `workspace`, `workspace.name`, `workspace.os.version`, … A list contributes its own path and,
    when it holds an object, the paths inside its first object element, joined without an index:
    `{"tickets": [{"id": 1}]}` gives `tickets` and `tickets.id`. A template renders a list as a whole; the
    inner paths tell its author what the elements look like. Scalars, and lists inside lists, contribute
    only their own path. Meant for a payload that `check_event_type` accepts.
    """
    # A dict is the ordered set: the first occurrence wins, so a payload key that repeats an envelope
    # variable (`timestamp`) is listed once, where the envelope puts it.
    seen: dict[str, None] = dict.fromkeys(ENVELOPE_VARIABLES)
    _collect_paths(sample_payload, "", seen)
    return tuple(seen)


def _collect_paths(obj: Mapping[str, Any], prefix: str, seen: dict[str, None]) -> None:
    for key, value in obj.items():
        path = f"{prefix}{key}"
        seen.setdefault(path)
        inner = _first_object(value) if isinstance(value, list) else value
        if isinstance(inner, Mapping):
            _collect_paths(inner, f"{path}.", seen)


def _first_object(items: list[Any]) -> Mapping[str, Any] | None:
    return next((item for item in items if isinstance(item, Mapping)), None)


def check_event_type(name: str, description: str | None, sample_payload: Any) -> list[Problem]:
    """Every problem of a `defineEventType` input, each naming its GraphQL input field."""
    problems = _name_problems(name)
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        problems.append(Problem("description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters"))
    problems += _sample_problems(sample_payload)
    return problems


def _name_problems(name: str) -> list[Problem]:
    if not name:
        return [Problem("name", "must not be empty")]
    if len(name) > MAX_NAME_LENGTH:
        return [Problem("name", f"must be at most {MAX_NAME_LENGTH} characters")]
    if not _NAME.fullmatch(name):
        return [
            Problem(
                "name",
                "must be lowercase words ([a-z][a-z0-9]*) joined by dots or underscores, "
                'e.g. "monitor.alert" or "reserved_instance.surplus"',
            )
        ]
    from domain.built_in_types import BUILT_IN  # here: the built-in types are made from this module's spec

    if name in BUILT_IN:
        return [Problem("name", f'"{name}" is built in and cannot be redefined')]
    return []


def _sample_problems(sample: Any) -> list[Problem]:
    if not isinstance(sample, dict):
        return [Problem("samplePayload", "must be a JSON object")]
    problems: list[Problem] = []
    too_deep_at = _too_deep_at(sample, "", 1)
    if too_deep_at is not None:
        problems.append(
            Problem(
                "samplePayload", f"must nest at most {MAX_SAMPLE_DEPTH} levels deep (deeper at {too_deep_at})"
            )
        )
    try:
        size = len(json.dumps(sample, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError):
        problems.append(Problem("samplePayload", "must hold only JSON values"))
    except RecursionError:
        pass  # only a payload nested far too deep gets here, and that has been reported above
    else:
        if size > MAX_SAMPLE_BYTES:
            problems.append(
                Problem("samplePayload", f"must be at most {MAX_SAMPLE_BYTES // 1024} KiB as compact JSON")
            )
    _collect_key_problems(sample, "", 1, problems)
    return problems


def _too_deep_at(value: Any, path: str, depth: int) -> str | None:
    """Where the first object or list nested deeper than allowed is; the top-level object is level 1.

    Recursion stops one level past the limit, so a hostile payload cannot exhaust the stack.
    """
    if not isinstance(value, dict | list):
        return None
    if depth > MAX_SAMPLE_DEPTH:
        return path
    children = value.items() if isinstance(value, dict) else ((f"[{i}]", v) for i, v in enumerate(value))
    for step, child in children:
        found = _too_deep_at(child, _join(path, step), depth + 1)
        if found is not None:
            return found
    return None


def _collect_key_problems(value: Any, path: str, depth: int, problems: list[Problem]) -> None:
    # Keys past the depth limit go unread: that payload is refused already, and the walk stays bounded.
    if depth > MAX_SAMPLE_DEPTH:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = _join(path, key)
            if not (isinstance(key, str) and _KEY.fullmatch(key)):
                problems.append(
                    Problem(
                        "samplePayload",
                        f'key "{child_path}" is not usable as a variable name ([A-Za-z_][A-Za-z0-9_]*)',
                    )
                )
            _collect_key_problems(child, child_path, depth + 1, problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _collect_key_problems(item, f"{path}[{i}]", depth + 1, problems)


def _join(path: str, step: object) -> str:
    """The path to a child for messages: `a.b` for a key, `a[0]` for a list index."""
    segment = str(step)
    if not path or segment.startswith("["):
        return f"{path}{segment}"
    return f"{path}.{segment}"
