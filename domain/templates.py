"""Payload templates: checked on save, compiled once, rendered into a request body for each delivery.

Placeholders are `{{ path }}` (spaces inside the braces allowed) and `#name`, where a path is names
(`[A-Za-z_][A-Za-z0-9_]*`) joined by dots: `{{ metadata.attributes.priority }}`, `#event_type`.

- Variables of an event: the envelope (`event_id`, `event_type`, `organization_id`, `organization_name`,
  `timestamp`) and the payload's keys and dotted paths into its objects. The envelope names always win:
  a payload key called `timestamp` cannot be reached. A path does not go into arrays.
- `{{path}}` that the event lacks renders as null (a lone placeholder) or as nothing (inside text).
  `#name` that the event lacks stays literally `#name`, so that Slack's "#alerts" survives; for the same
  reason an unknown `#name` is never a problem on save, whereas an unknown `{{path}}` is.
- JSON bodies: in every string of the template, object keys included, a string that is exactly one
  placeholder (no surrounding spaces) takes the value with its JSON type; any other placeholder is
  replaced by the value as text (strings as they are, anything else as compact JSON) and the string is
  re-serialised, so no value can break out of its string. The body is always valid JSON.
- Text bodies: the same substitutions, as plain text.
- Limits: at most MAX_PLACEHOLDERS placeholders (checked on save), and a rendered body of at most the
  limit given to `render` (HOOKLINE_MAX_RENDERED_BYTES), counted while rendering: a template that
  repeats a large value stops with RenderedBodyTooLarge before the body is built, never after.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import orjson

from domain import catalogue
from domain.errors import Problem, RenderedBodyTooLarge
from domain.nesting import too_deep

FIELD = "payloadTemplate"
ENVELOPE_VARIABLES = frozenset(catalogue.ENVELOPE_VARIABLES)
# Far above any real template (a rich Slack message has a few dozen); each placeholder may repeat a
# payload's largest value, so a template of tens of thousands of them only multiplies a payload.
MAX_PLACEHOLDERS = 1000
DEFAULT_MAX_RENDERED_BYTES = 4 * 1024 * 1024

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_PLACEHOLDER = re.compile(rf"\{{\{{\s*(?P<braced>{_PATH})\s*\}}\}}|#(?P<hashed>{_PATH})")

Lookup = Callable[[str], tuple[bool, Any]]


@dataclass(frozen=True)
class Variables:
    """What the placeholders of a template can name for one event."""

    envelope: Mapping[str, Any]
    payload: Mapping[str, Any]

    def lookup(self, path: str) -> tuple[bool, Any]:
        """(found, value) of a dotted path."""
        names = path.split(".")
        if names[0] in ENVELOPE_VARIABLES:
            if len(names) == 1 and path in self.envelope:
                return True, self.envelope[path]
            return False, None
        return _follow(self.payload, names)


def _follow(value: Any, names: Sequence[str]) -> tuple[bool, Any]:
    """A path into JSON; a list met before the path ends yields the values found in its elements
    (so `tickets.id` over a list of tickets is the list of their ids, as the catalogue declares)."""
    for index, name in enumerate(names):
        if isinstance(value, list):
            found = [v for ok, v in (_follow(item, names[index:]) for item in value) if ok]
            return (True, found) if found else (False, None)
        if not isinstance(value, Mapping) or name not in value:
            return False, None
        value = value[name]
    return True, value


def event_variables(envelope: Mapping[str, Any], payload: Mapping[str, Any]) -> Variables:
    """The variables of an event; ids and times in the envelope become the strings a receiver sees."""
    return Variables({k: _envelope_value(v) for k, v in envelope.items() if k in ENVELOPE_VARIABLES}, payload)


def _envelope_value(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def placeholders(template: str) -> set[str]:
    """The paths named by the `{{path}}` placeholders of a text."""
    return {m["braced"] for m in _PLACEHOLDER.finditer(template) if m["braced"]}


def check_template(
    template: str, *, json_body: bool, declared: Sequence[tuple[str, frozenset[str]]]
) -> list[Problem]:
    """Every problem of a template: not JSON (for a JSON body), too many placeholders, and each
    `{{path}}` a declared type lacks.

    `declared` holds (event type, its variables) for each of the webhook's event types that is defined;
    types that are not defined accept any variable, so they are simply left out.
    """
    problems: list[Problem] = []
    texts = [template]
    if json_body:
        try:
            parsed = orjson.loads(template)
        except orjson.JSONDecodeError as error:
            position = f"line {error.lineno}, column {error.colno}"
            problems.append(Problem(FIELD, f"is not valid JSON: {error.msg} at {position}"))
        else:
            if message := too_deep(parsed):  # rendering walks a template recursively
                problems.append(Problem(FIELD, message))
            # From the parsed strings, so that a placeholder spelled with JSON escapes is seen too.
            texts = list(_strings(parsed))
    found = [match for text in texts for match in _PLACEHOLDER.finditer(text)]
    if len(found) > MAX_PLACEHOLDERS:
        problems.append(
            Problem(FIELD, f"has {len(found)} placeholders; at most {MAX_PLACEHOLDERS} are allowed")
        )
    names = {match["braced"] for match in found if match["braced"]}
    problems += [
        Problem(FIELD, f"{{{{{name}}}}} is not a variable of event type {event_type}")
        for event_type, variables in declared
        for name in sorted(names - variables - ENVELOPE_VARIABLES)
    ]
    return problems


def _strings(value: Any) -> Iterator[str]:
    """Every string of a parsed JSON document, object keys included."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


# Compiled form: a template becomes a tree of nodes in which everything without a placeholder is
# already serialised (an orjson Fragment), so that rendering only does the work that depends on the event.


class _Budget:
    """The bytes one render may still write. Rendering spends as it goes (a lower bound of what each
    part will take in the body) and stops as soon as the running size passes the limit, so that
    what it holds at once stays a small multiple of the limit."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise RenderedBodyTooLarge(self.limit)


@dataclass(frozen=True)
class _Placeholder:
    path: str
    hashed: bool  # `#name`: kept literally when the event lacks it

    def value(self, lookup: Lookup, budget: _Budget, fragments: bool) -> Any:
        found, value = lookup(self.path)
        if not found:
            return f"#{self.path}" if self.hashed else None
        if isinstance(value, str):
            budget.spend(len(value))  # a reference: nothing is copied until the body is written
        elif value is None or isinstance(value, bool | int | float):
            budget.spend(1)
        else:  # an object or a list: its size is known only once written, so it is written now
            written = _dumps(value)
            budget.spend(len(written))
            return orjson.Fragment(written) if fragments else value
        return value

    def text(self, lookup: Lookup, budget: _Budget) -> str:
        found, value = lookup(self.path)
        if not found:
            return f"#{self.path}" if self.hashed else ""
        text = value if isinstance(value, str) else _dumps(value).decode()
        budget.spend(len(text))
        return text


@dataclass(frozen=True)
class _Text:
    """A string with placeholders inside it: literal parts and placeholders, in order."""

    parts: tuple[str | _Placeholder, ...]

    def render(self, lookup: Lookup, budget: _Budget, fragments: bool = True) -> str:
        texts: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                budget.spend(len(part))
                texts.append(part)
            else:
                texts.append(part.text(lookup, budget))
        return "".join(texts)  # only once the budget allowed every part


@dataclass(frozen=True)
class _Lone:
    """A string that is exactly one placeholder: it becomes the value, with its JSON type."""

    placeholder: _Placeholder

    def render(self, lookup: Lookup, budget: _Budget, fragments: bool = True) -> Any:
        return self.placeholder.value(lookup, budget, fragments)


@dataclass(frozen=True)
class _Constant:
    value: Any
    fragment: orjson.Fragment
    size: int

    def render(self, lookup: Lookup, budget: _Budget, fragments: bool = True) -> Any:
        budget.spend(self.size)
        return self.fragment if fragments else self.value


@dataclass(frozen=True)
class _Array:
    items: tuple[_Node, ...]

    def render(self, lookup: Lookup, budget: _Budget, fragments: bool = True) -> Any:
        return [item.render(lookup, budget, fragments) for item in self.items]


@dataclass(frozen=True)
class _Object:
    members: tuple[tuple[str | _Text, _Node], ...]

    def render(self, lookup: Lookup, budget: _Budget, fragments: bool = True) -> Any:
        rendered = {}
        for key, value in self.members:
            name = key if isinstance(key, str) else key.render(lookup, budget)
            rendered[name] = value.render(lookup, budget, fragments)
        return rendered


class _Node(Protocol):
    def render(self, lookup: Lookup, budget: _Budget, fragments: bool = True) -> Any: ...


class CompiledTemplate:
    """A checked template, parsed once, rendered for each delivery."""

    def __init__(self, template: str, *, json_body: bool) -> None:
        self.json_body = json_body
        self._unreplaced = _utf8(template)
        self._root: _Node
        self._constant_body: bytes | None = None  # a JSON template without placeholders
        if not json_body:
            self._root = _compile_text(template)
            return
        parsed = orjson.loads(template)
        self._root = _compile_json(parsed) or _constant(parsed)
        if isinstance(self._root, _Constant):
            self._constant_body = orjson.dumps(parsed)

    def render(self, lookup: Lookup, *, max_bytes: int = DEFAULT_MAX_RENDERED_BYTES) -> bytes:
        """The body for one event, given a lookup of its variables (`event_variables(...).lookup`).

        Raises RenderedBodyTooLarge when the body would be larger than `max_bytes`."""
        if not self.json_body:
            body = _utf8(self._root.render(lookup, _Budget(max_bytes)))
        elif self._constant_body is not None:
            body = self._constant_body
        else:
            try:
                body = orjson.dumps(self._root.render(lookup, _Budget(max_bytes)))
            except orjson.JSONEncodeError:
                # A value orjson refuses (a lone surrogate, an integer beyond 64 bits, nesting past 255
                # levels): render again without fragments and serialise the slow way.
                body = _slow_dumps(self._root.render(lookup, _Budget(max_bytes), fragments=False))
        # The budget counted characters and values as they are; escapes and UTF-8 may add to them.
        if len(body) > max_bytes:
            raise RenderedBodyTooLarge(max_bytes)
        return body

    def render_unreplaced(self) -> bytes:
        """The template as it is, placeholders included: the body of a test sent without sample data."""
        return self._unreplaced


def compile_template(template: str, *, json_body: bool) -> CompiledTemplate:
    """Parse a checked template (see `check_template`) once, for rendering many times."""
    return CompiledTemplate(template, json_body=json_body)


def _compile_json(value: Any) -> _Node | None:
    """The node rendering a parsed JSON value, or None when it holds no placeholder (a constant)."""
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, list):
        items = [_compile_json(item) for item in value]
        if all(item is None for item in items):
            return None
        return _Array(tuple(n or _constant(v) for n, v in zip(items, value, strict=True)))
    if isinstance(value, dict):
        members = [(_compile_key(k), _compile_json(v), v) for k, v in value.items()]
        if all(isinstance(k, str) and n is None for k, n, _ in members):
            return None
        return _Object(tuple((k, n or _constant(v)) for k, n, v in members))
    return None


def _compile_string(value: str) -> _Node | None:
    text = _compile_text(value)
    if len(text.parts) == 1 and isinstance(text.parts[0], _Placeholder):
        return _Lone(text.parts[0])
    return text if any(isinstance(p, _Placeholder) for p in text.parts) else None


def _compile_key(key: str) -> str | _Text:
    # A key is always a string, so even a lone placeholder in it renders as text.
    text = _compile_text(key)
    return text if any(isinstance(p, _Placeholder) for p in text.parts) else key


def _compile_text(text: str) -> _Text:
    parts: list[str | _Placeholder] = []
    start = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > start:
            parts.append(text[start : match.start()])
        braced = match["braced"]
        parts.append(_Placeholder(braced or match["hashed"], hashed=not braced))
        start = match.end()
    if start < len(text):
        parts.append(text[start:])
    return _Text(tuple(parts))


def _constant(value: Any) -> _Constant:
    written = orjson.dumps(value)
    return _Constant(value, orjson.Fragment(written), len(written))


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _slow_dumps(value)


def _slow_dumps(value: Any) -> bytes:
    return json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _jsonable(value: Any) -> Any:
    """A copy that any JSON encoder accepts: lone surrogates replaced, non-finite floats null."""
    if isinstance(value, str):
        return _repaired(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_repaired(k if isinstance(k, str) else str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return _repaired(str(_envelope_value(value)))


def _repaired(text: str) -> str:
    # Through UTF-16, so that a split surrogate pair is joined again and a lone one becomes U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _repaired(text).encode()
