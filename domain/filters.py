"""Conditions on an event's payload: groups OR'd, conditions inside a group AND'd.

How a condition is evaluated against a payload (a JSON object):

- `field` is a dotted path into the payload (`ticket.priority`). When the path meets a list before its
  end, every element is followed (lists of lists too), so `tickets.priority` over a list of tickets
  yields each ticket's priority; the condition holds if it holds for ANY value reached. A value at the
  end of the path is taken whole: a list there is compared as a list (and is what CONTAINS looks into).
  List indexes cannot be addressed, and a key containing a dot cannot be reached.
- EQ: JSON equality, so 8 == 8.0, but true != 1 and "8" != 8; objects and arrays compare deeply.
  IN: equal to any of the values. CONTAINS: a substring of a string, or an element (JSON equality) of
  an array; anything else never contains. EXISTS (or `values: [true]`): present and not null.
  GT/GTE/LT/LTE: both numbers (booleans are not numbers), or both ISO 8601 timestamps (a trailing Z is
  UTC, so is a timestamp without offset) compared as instants. MATCHES: an RE2 search, strings only.
- NEQ, NOT_IN and `EXISTS [false]` are the exact negations of EQ, IN and EXISTS: a field that is
  missing is NEQ to anything and NOT_IN any list, and "does not exist" means absent or null.
- Mixed types never match and never raise: no JSON payload makes `CompiledFilter.matches` fail.
- No groups at all: every event matches.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import ge, gt, le, lt
from types import MappingProxyType
from typing import Any

import re2

from domain.errors import Problem
from domain.nesting import too_deep


class FilterOperator(enum.StrEnum):
    EQ = "EQ"
    NEQ = "NEQ"
    IN = "IN"
    NOT_IN = "NOT_IN"
    CONTAINS = "CONTAINS"
    EXISTS = "EXISTS"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"
    MATCHES = "MATCHES"


OPERATORS = tuple(operator.value for operator in FilterOperator)
MAX_GROUPS = 20
MAX_CONDITIONS = 20
MAX_VALUES = 100
MAX_PATTERN = 1000

_ONE_VALUE = frozenset({"EQ", "NEQ", "CONTAINS", "GT", "GTE", "LT", "LTE", "MATCHES"})
_SOME_VALUES = frozenset({"IN", "NOT_IN"})
_ORDERING = frozenset({"GT", "GTE", "LT", "LTE"})
_NEGATED = MappingProxyType({"NEQ": "EQ", "NOT_IN": "IN"})
# No timestamp fromisoformat accepts is this long; longer strings are not worth parsing.
_MAX_TIMESTAMP = 64


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    values: list[Any] | None = None


def check_filters(filters: tuple[tuple[Condition, ...], ...]) -> list[Problem]:
    """Every problem of the filter groups, each named by its input path: `filters[0].conditions[1].values`."""
    problems: list[Problem] = []
    if len(filters) > MAX_GROUPS:
        problems.append(Problem("filters", f"must hold at most {MAX_GROUPS} groups"))
    for i, group in enumerate(filters):
        where = f"filters[{i}].conditions"
        if not group:
            problems.append(Problem(where, "must hold at least one condition"))
        elif len(group) > MAX_CONDITIONS:
            problems.append(Problem(where, f"must hold at most {MAX_CONDITIONS} conditions"))
        for j, condition in enumerate(group):
            problems += _condition_problems(condition, f"{where}[{j}]")
    return problems


def _condition_problems(condition: Condition, where: str) -> list[Problem]:
    problems = []
    if not condition.field.strip():
        problems.append(Problem(f"{where}.field", "must not be empty"))
    elif not all(condition.field.split(".")):
        problems.append(Problem(f"{where}.field", "must be a dotted path of non-empty names, like ticket.id"))
    if condition.operator not in OPERATORS:
        problems.append(Problem(f"{where}.operator", f"must be one of {', '.join(OPERATORS)}"))
        return problems  # the values can only be judged against a known operator
    message = _values_problem(condition.operator, condition.values or [])
    if message:
        problems.append(Problem(f"{where}.values", message))
    return problems


def _values_problem(operator: str, values: list[Any]) -> str | None:
    if len(values) > MAX_VALUES:
        return f"must hold at most {MAX_VALUES} values"
    if message := too_deep(values):
        return message
    if operator in _ONE_VALUE and len(values) != 1:
        return f"{operator} takes exactly one value"
    if operator in _SOME_VALUES and not values:
        return f"{operator} takes at least one value"
    if operator == "EXISTS" and not (not values or (len(values) == 1 and isinstance(values[0], bool))):
        return "EXISTS takes no value, or one boolean (false: absent or null)"
    if operator in _ORDERING and not (_is_number(values[0]) or _timestamp(values[0]) is not None):
        return f"{operator} takes a number or an ISO 8601 timestamp"
    if operator == "MATCHES":
        return _pattern_problem(values[0])
    return None


def _pattern_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return "MATCHES takes a string: a regular expression (RE2 syntax)"
    if len(pattern) > MAX_PATTERN:
        return f"the regular expression must be at most {MAX_PATTERN} characters"
    try:
        _compile_pattern(pattern)
    except UnicodeEncodeError:
        return "the regular expression is not valid UTF-8"
    except re2.error as error:
        return f"is not a valid regular expression: {_re2_message(error)}"
    return None


def _compile_pattern(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the user's mistake, reported back, not a log line
    return re2.compile(pattern, options)


def _re2_message(error: Exception) -> str:
    # The binding passes RE2's message through as bytes.
    reason = error.args[0] if error.args else "invalid"
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


_Test = Callable[[Any], bool]


@dataclass(frozen=True)
class _Compiled:
    path: tuple[str, ...]
    test: _Test  # on one value reached by the path
    negate: bool  # NEQ, NOT_IN and EXISTS [false] are the negations of EQ, IN and EXISTS

    def matches(self, payload: Mapping[str, Any]) -> bool:
        return any(self.test(value) for value in _reached(payload, self.path)) != self.negate


@dataclass(frozen=True)
class CompiledFilter:
    """Filter groups ready to be evaluated many times: regexes, timestamps and value sets prepared once."""

    groups: tuple[tuple[_Compiled, ...], ...]

    def matches(self, payload: Mapping[str, Any]) -> bool:
        if not self.groups:
            return True
        return any(all(c.matches(payload) for c in group) for group in self.groups)


def compile_filters(filters: tuple[tuple[Condition, ...], ...]) -> CompiledFilter:
    """Prepare checked filters (see `check_filters`) for evaluation."""
    return CompiledFilter(tuple(tuple(_compile(c) for c in group) for group in filters))


def _compile(condition: Condition) -> _Compiled:
    path = tuple(condition.field.split("."))
    values = condition.values or []
    operator = _NEGATED.get(condition.operator, condition.operator)
    negate = condition.operator in _NEGATED
    if operator == "EXISTS":
        return _Compiled(path, _is_present, negate=values == [False])
    return _Compiled(path, _TESTS[operator](values), negate)


def _reached(payload: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[Any]:
    """Every value at the end of the path, following each element of the lists met on the way."""
    # Iterative, so that a deeply nested payload cannot exhaust the stack.
    stack: list[tuple[Any, int]] = [(payload, 0)]
    while stack:
        value, depth = stack.pop()
        if depth == len(path):
            yield value
        elif isinstance(value, Mapping):
            if path[depth] in value:
                stack.append((value[path[depth]], depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((element, depth) for element in reversed(value))


def _is_present(value: Any) -> bool:
    return value is not None


def _equal_test(values: list[Any]) -> _Test:
    expected = values[0]
    return lambda value: json_equal(value, expected)


def _in_test(values: list[Any]) -> _Test:
    keys = {key for key in map(_scalar_key, values) if key is not None}
    compound = [v for v in values if _scalar_key(v) is None]

    def test(value: Any) -> bool:
        key = _scalar_key(value)
        if key is not None:
            return key in keys
        return any(json_equal(value, v) for v in compound)

    return test


def _contains_test(values: list[Any]) -> _Test:
    expected = values[0]

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return isinstance(expected, str) and expected in value
        if isinstance(value, list | tuple):
            return any(json_equal(element, expected) for element in value)
        return False

    return test


def _ordering_test(compare: Callable[[Any, Any], bool]) -> Callable[[list[Any]], _Test]:
    def make(values: list[Any]) -> _Test:
        bound = values[0]
        if _is_number(bound):
            return lambda value: _is_number(value) and compare(value, bound)
        instant = _timestamp(bound)
        assert instant is not None, "checked by check_filters"

        def test(value: Any) -> bool:
            other = _timestamp(value)
            return other is not None and compare(other, instant)

        return test

    return make


def _matches_test(values: list[Any]) -> _Test:
    pattern = _compile_pattern(values[0])

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return pattern.search(value) is not None
        except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 escapes can produce
            return False

    return test


_TESTS: Mapping[str, Callable[[list[Any]], _Test]] = MappingProxyType(
    {
        "EQ": _equal_test,
        "IN": _in_test,
        "CONTAINS": _contains_test,
        "GT": _ordering_test(gt),
        "GTE": _ordering_test(ge),
        "LT": _ordering_test(lt),
        "LTE": _ordering_test(le),
        "MATCHES": _matches_test,
    }
)


def _is_number(value: Any) -> bool:
    # bool is a subclass of int in Python, not a number in JSON; NaN and infinities are not JSON at all.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _timestamp(value: Any) -> datetime | None:
    """The instant an ISO 8601 string names (naive means UTC), or None for anything else."""
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _scalar_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key that is equal for JSON-equal scalars: 8 and 8.0 share one, true and 1 do not."""
    if value is None or isinstance(value, bool | str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", value)
    return None


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: numbers by value, booleans apart from numbers, containers deeply."""
    # Iterative, so that comparing deeply nested values cannot exhaust the stack.
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        key_a, key_b = _scalar_key(a), _scalar_key(b)
        if key_a is not None or key_b is not None:
            if key_a != key_b:
                return False
        elif isinstance(a, Mapping) and isinstance(b, Mapping):
            if a.keys() != b.keys():
                return False
            pending.extend((a[k], b[k]) for k in a)
        elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        else:
            return False
    return True
