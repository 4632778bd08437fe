"""Payload templates (domain/templates.py): what check_template refuses, and what a rendered body holds."""

from __future__ import annotations

import json
import operator
import re
import string
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import Problem, RenderedBodyTooLarge
from domain.nesting import MAX_NESTING as MAX_DEPTH
from domain.templates import (
    MAX_PLACEHOLDERS,
    check_template,
    compile_template,
    event_variables,
    placeholders,
)

ENVELOPE: dict[str, Any] = {
    "event_id": "0b6c1c1e-3a1f-4a77-9a43-6f1f0f6d2d11",
    "event_type": "alert.activated",
    "organization_id": "4f9a7c1b-8f4e-4b1e-9c55-2c1d9a0e7b22",
    "organization_name": "Acme",
    "timestamp": "2024-05-01T10:00:00Z",
}
PAYLOAD: dict[str, Any] = {
    "alert_name": "Disk full",
    "severity": 3,
    "ratio": 0.25,
    "muted": False,
    "owner": None,
    "tags": ["db", "prod"],
    "metadata": {"attributes": {"priority": "P1", "score": 9.5}},
    "quote": 'Paris "HQ"',
    "backslash": "C:\\temp\\",
    "multiline": "line 1\nline 2\r\n\ttabbed",
    "unicode": "café ☕ 日本 😀",
    "control": "bell\x07 nul\x00 esc\x1b",
    "alerts": "the alerts variable",
    "timestamp": "a payload key the envelope shadows",
}


def render(template: str, *, json_body: bool = True, payload: Mapping[str, Any] = PAYLOAD) -> bytes:
    return compile_template(template, json_body=json_body).render(event_variables(ENVELOPE, payload).lookup)


def render_json(template: str, payload: Mapping[str, Any] = PAYLOAD) -> Any:
    return json.loads(render(template, payload=payload))


# -- lone placeholders keep the value's JSON type ---------------------------------------------------------


@pytest.mark.parametrize(
    ("placeholder", "expected"),
    [
        pytest.param("{{severity}}", 3, id="int"),
        pytest.param("{{ ratio }}", 0.25, id="float-with-spaces"),
        pytest.param("{{  muted\t}}", False, id="bool-with-tab"),
        pytest.param("{{owner}}", None, id="null"),
        pytest.param("{{tags}}", ["db", "prod"], id="list"),
        pytest.param("{{metadata}}", {"attributes": {"priority": "P1", "score": 9.5}}, id="object"),
        pytest.param("{{metadata.attributes.priority}}", "P1", id="dotted-path"),
        pytest.param("{{metadata.attributes.score}}", 9.5, id="dotted-path-number"),
        pytest.param("{{quote}}", 'Paris "HQ"', id="string-with-quotes"),
        pytest.param("{{missing}}", None, id="missing-is-null"),
        pytest.param("{{metadata.missing.deeper}}", None, id="missing-deep-is-null"),
        pytest.param("{{alert_name.length}}", None, id="path-through-string-is-missing"),
        pytest.param("{{tags.first}}", None, id="path-through-list-is-missing"),
        pytest.param("#severity", 3, id="hash-name-keeps-type"),
        pytest.param("#metadata.attributes.priority", "P1", id="hash-dotted-path"),
        pytest.param("#nowhere", "#nowhere", id="unknown-hash-name-stays"),
        pytest.param("{{event_type}}", "alert.activated", id="envelope"),
        pytest.param("{{timestamp}}", "2024-05-01T10:00:00Z", id="envelope-wins-over-payload"),
        pytest.param("{{timestamp.x}}", None, id="envelope-has-no-inner-paths"),
        pytest.param("#organization_name", "Acme", id="envelope-by-hash"),
    ],
)
def test_a_string_that_is_one_placeholder_becomes_the_value(placeholder: str, expected: Any) -> None:
    assert render_json(json.dumps({"v": placeholder})) == {"v": expected}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(" {{severity}}", id="leading-space"),
        pytest.param("{{severity}} ", id="trailing-space"),
        pytest.param("{{severity}}{{ratio}}", id="two-placeholders"),
        pytest.param("x#severity", id="hash-after-text"),
    ],
)
def test_anything_around_a_placeholder_makes_it_text(text: str) -> None:
    assert isinstance(render_json(json.dumps({"v": text}))["v"], str)


def test_the_whole_body_may_be_one_placeholder() -> None:
    assert render_json('"{{metadata}}"') == PAYLOAD["metadata"]
    assert render('"{{severity}}"') == b"3"


# -- placeholders inside text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Alert: {{alert_name}}!", "Alert: Disk full!", id="string"),
        pytest.param("level {{severity}}", "level 3", id="int"),
        pytest.param("ratio {{ratio}}", "ratio 0.25", id="float"),
        pytest.param("muted={{muted}} owner={{owner}}", "muted=false owner=null", id="bool-and-null"),
        pytest.param("tags {{tags}}", 'tags ["db","prod"]', id="list-as-compact-json"),
        pytest.param("attrs {{metadata.attributes}}", 'attrs {"priority":"P1","score":9.5}', id="object"),
        pytest.param("[{{missing}}]", "[]", id="missing-is-empty"),
        pytest.param("{{severity}}{{ratio}}", "30.25", id="adjacent"),
        pytest.param("at {{quote}}", 'at Paris "HQ"', id="quotes"),
        pytest.param("path {{backslash}}", "path C:\\temp\\", id="backslashes"),
        pytest.param(">{{multiline}}<", ">line 1\nline 2\r\n\ttabbed<", id="newlines-and-tabs"),
        pytest.param("{{unicode}}!", "café ☕ 日本 😀!", id="unicode"),
        pytest.param("{{control}}.", "bell\x07 nul\x00 esc\x1b.", id="control-characters"),
        pytest.param("to #alerts now", "to the alerts variable now", id="known-hash-name"),
        pytest.param("to #ops-team now", "to #ops-team now", id="unknown-hash-name-stays"),
        pytest.param("see #nowhere.", "see #nowhere.", id="unknown-hash-name-before-dot"),
        pytest.param("#severity.", "3.", id="known-hash-name-before-dot"),
        pytest.param("# not a name", "# not a name", id="bare-hash"),
        pytest.param("{{ not a path }}", "{{ not a path }}", id="not-a-placeholder"),
        pytest.param("{{9lives}}", "{{9lives}}", id="name-must-not-start-with-digit"),
        pytest.param("{single}", "{single}", id="single-braces"),
        pytest.param("{{{severity}}}", "{3}", id="triple-braces"),
        pytest.param(
            "by {{organization_name}} at {{timestamp}}", "by Acme at 2024-05-01T10:00:00Z", id="envelope"
        ),
    ],
)
def test_placeholders_inside_text_are_replaced_by_the_value_as_text(text: str, expected: str) -> None:
    assert render_json(json.dumps({"v": text})) == {"v": expected}


def test_object_keys_take_placeholders_as_text() -> None:
    template = json.dumps({"{{alert_name}}": 1, "{{severity}}": "{{severity}}", "k-{{quote}}": 2, "#ops": 3})
    assert render_json(template) == {"Disk full": 1, "3": 3, 'k-Paris "HQ"': 2, "#ops": 3}


def test_a_key_that_is_a_missing_placeholder_becomes_empty() -> None:
    assert render_json('{"{{missing}}": 1}') == {"": 1}


def test_placeholders_deep_inside_arrays_and_objects() -> None:
    template = json.dumps(
        {
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "*{{alert_name}}* ({{severity}})"}},
                {"type": "context", "elements": ["{{tags}}", "#severity", 1, None, True]},
            ],
            "channel": "#oncall-prod",
            "static": {"nested": [1, 2, {"x": "y"}]},
        }
    )
    assert render_json(template) == {
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Disk full* (3)"}},
            {"type": "context", "elements": [["db", "prod"], 3, 1, None, True]},
        ],
        "channel": "#oncall-prod",
        "static": {"nested": [1, 2, {"x": "y"}]},
    }


def test_the_body_is_compact_json() -> None:
    assert render('{ "a" : [ 1 , 2 ] , "b" : "{{severity}}" }') == b'{"a":[1,2],"b":3}'
    assert render('{ "a" : [ 1 , 2 ] }') == b'{"a":[1,2]}'


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("lone \ud800 surrogate", id="lone-surrogate"),
        pytest.param(2**80, id="integer-beyond-64-bits"),
        pytest.param(float("nan"), id="nan"),
        pytest.param({"deep": [[[[[[[[[[[[1]]]]]]]]]]]] * 30}, id="deeply-nested"),
        pytest.param(UUID(int=1), id="uuid"),
        pytest.param(datetime(2024, 5, 1, tzinfo=UTC), id="datetime"),
    ],
)
def test_values_orjson_refuses_still_give_valid_json(value: Any) -> None:
    payload = {"v": value, "deep": _nested(300)}
    for template in ('{"a": "{{v}}", "b": "x {{v}} y", "{{v}}": 1}', '{"d": "{{deep}}", "e": "{{v}}"}'):
        body = render(template, payload=payload)
        assert isinstance(json.loads(body), dict)
        body.decode("utf-8")  # and valid UTF-8


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# -- text bodies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("Alert {{alert_name}} level {{ severity }}", "Alert Disk full level 3", id="values"),
        pytest.param(
            "{{tags}} / {{metadata.attributes}}", '["db","prod"] / {"priority":"P1","score":9.5}', id="json"
        ),
        pytest.param("[{{missing}}]", "[]", id="missing-is-empty"),
        pytest.param("#alerts and #ops", "the alerts variable and #ops", id="hash-names"),
        pytest.param("{{quote}} {{multiline}}", 'Paris "HQ" line 1\nline 2\r\n\ttabbed', id="no-escaping"),
        pytest.param("{{unicode}}", "café ☕ 日本 😀", id="unicode"),
        pytest.param("not { json", "not { json", id="no-json-needed"),
        pytest.param("", "", id="empty"),
    ],
)
def test_text_bodies_are_plain_substitution(template: str, expected: str) -> None:
    assert render(template, json_body=False) == expected.encode()


def test_a_text_body_with_a_lone_surrogate_is_still_utf8() -> None:
    assert render("{{v}}", json_body=False, payload={"v": "a\ud800b"}) == "a\ufffdb".encode()


# -- unreplaced (a test sent without sample data) ---------------------------------------------------------


@pytest.mark.parametrize("json_body", [True, False])
def test_render_unreplaced_leaves_the_template_as_it_is(json_body: bool) -> None:
    template = '{"text": "{{alert_name}} to #alerts", "n": "{{severity}}"}'
    body = compile_template(template, json_body=json_body).render_unreplaced()
    assert body == template.encode()
    assert json.loads(body) == {"text": "{{alert_name}} to #alerts", "n": "{{severity}}"}


# -- placeholders and check_template ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("{{a}} {{ b.c }} {{a}}", {"a", "b.c"}, id="braced"),
        pytest.param("#a {{b}}", {"b"}, id="hash-names-are-not-listed"),
        pytest.param("{{ a b }} {{}} {{1}}", set(), id="not-placeholders"),
        pytest.param("", set(), id="empty"),
    ],
)
def test_placeholders_lists_braced_paths(template: str, expected: set[str]) -> None:
    assert placeholders(template) == expected


ALERT = ("alert.activated", frozenset({"alert_name", "severity", "metadata", "metadata.priority"}))
TICKET = ("ticket.created", frozenset({"ticket", "ticket.id", "severity"}))


@pytest.mark.parametrize(
    ("template", "json_body", "declared", "messages"),
    [
        pytest.param('{"a": "{{alert_name}}"}', True, [ALERT], [], id="declared"),
        pytest.param('{"a": "{{metadata.priority}} #x"}', True, [ALERT], [], id="dotted-and-unknown-hash"),
        pytest.param('{"a": "#anything"}', True, [ALERT, TICKET], [], id="hash-is-never-a-problem"),
        pytest.param(
            '{"a": "{{event_id}} {{event_type}} {{organization_id}} {{organization_name}} {{timestamp}}"}',
            True,
            [ALERT],
            [],
            id="envelope-always-declared",
        ),
        pytest.param('{"a": "{{nope}}"}', True, [], [], id="no-defined-type-accepts-anything"),
        pytest.param(
            '{"a": "{{nope}}"}',
            True,
            [ALERT],
            ["{{nope}} is not a variable of event type alert.activated"],
            id="unknown",
        ),
        pytest.param(
            '{"{{key_var}}": "{{severity}} {{alert_name}}"}',
            True,
            [ALERT, TICKET],
            [
                "{{key_var}} is not a variable of event type alert.activated",
                "{{alert_name}} is not a variable of event type ticket.created",
                "{{key_var}} is not a variable of event type ticket.created",
            ],
            id="each-unknown-name-for-each-type-keys-included",
        ),
        pytest.param(
            '{"a": "\\u007b{escaped}}"}',
            True,
            [ALERT],
            ["{{escaped}} is not a variable of event type alert.activated"],
            id="placeholder-spelled-with-escapes",
        ),
        pytest.param(
            "Hi {{ticket.id}} {{nope}}",
            False,
            [TICKET],
            ["{{nope}} is not a variable of event type ticket.created"],
            id="text",
        ),
        pytest.param("not json {{nope}}", False, [], [], id="text-need-not-be-json"),
    ],
)
def test_check_template(
    template: str, json_body: bool, declared: list[tuple[str, frozenset[str]]], messages: list[str]
) -> None:
    problems = check_template(template, json_body=json_body, declared=declared)
    assert problems == [Problem("payloadTemplate", m) for m in messages]


@pytest.mark.parametrize(
    ("template", "position"),
    [
        pytest.param('{"a": 1,}', "line 1, column 8", id="trailing-comma"),
        pytest.param('{\n  "a": "x"\n  "b": 1\n}', "line 3, column 3", id="position-on-later-line"),
        pytest.param("", "line 1, column 1", id="empty"),
        pytest.param("{{a}}", "line 1, column 2", id="bare-placeholder"),
        pytest.param('{"a": NaN}', "line 1, column 7", id="nan"),
        pytest.param('["\\ud800"]', "line 1, column 3", id="lone-surrogate-escape"),
        pytest.param('{"a": 1} {"b": 2}', "line 1, column 10", id="two-documents"),
    ],
)
def test_a_json_template_that_does_not_parse_is_refused_with_the_position(
    template: str, position: str
) -> None:
    (problem,) = check_template(template, json_body=True, declared=[])
    assert problem.field == "payloadTemplate"
    assert problem.message.startswith("is not valid JSON: ")
    assert problem.message.endswith(f" at {position}")


def test_a_template_that_does_not_parse_still_has_its_unknown_variables_named() -> None:
    problems = check_template('{"a": "{{nope}}",}', json_body=True, declared=[ALERT])
    assert [p.message.split(":")[0] for p in problems] == [
        "is not valid JSON",
        "{{nope}} is not a variable of event type alert.activated",
    ]


def test_a_template_nested_too_deep_is_refused() -> None:
    deep_enough = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    too_deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert check_template(deep_enough, json_body=True, declared=[]) == []
    assert check_template(too_deep, json_body=True, declared=[]) == [
        Problem("payloadTemplate", f"must be nested at most {MAX_DEPTH} levels deep")
    ]


@pytest.mark.parametrize(
    ("template", "json_body"),
    [
        pytest.param(json.dumps({"t": "#x" * 30_000}), True, id="hash-names-in-a-json-string"),
        pytest.param(json.dumps(["{{x}}"] * 30_000), True, id="lone-placeholders"),
        pytest.param('{"{{x}}": 1, "t": "' + "\\u0023x" * 29_999 + '"}', True, id="in-keys-and-escaped"),
        pytest.param("{{ x }}" * 30_000, False, id="text"),
    ],
)
def test_a_template_of_more_placeholders_than_the_limit_is_refused_with_the_limit_and_the_count(
    template: str, json_body: bool
) -> None:
    assert check_template(template, json_body=json_body, declared=[]) == [
        Problem("payloadTemplate", f"has 30000 placeholders; at most {MAX_PLACEHOLDERS} are allowed")
    ]


def test_a_template_of_exactly_the_placeholder_limit_is_accepted() -> None:
    template = json.dumps({"t": "#x" * (MAX_PLACEHOLDERS - 1), "{{y}}": 1})
    assert check_template(template, json_body=True, declared=[]) == []


# -- the rendered-body limit ------------------------------------------------------------------------------


def _render_at_most(
    template: str, payload: Mapping[str, Any], max_bytes: int, *, json_body: bool = True
) -> bytes:
    compiled = compile_template(template, json_body=json_body)
    return compiled.render(event_variables(ENVELOPE, payload).lookup, max_bytes=max_bytes)


@pytest.mark.parametrize(
    ("template", "json_body", "payload"),
    [
        pytest.param('{"t": "{{x}}"}', True, {"x": "a" * 10}, id="lone-string"),
        pytest.param('{"t": "<{{x}}>"}', True, {"x": "a" * 8}, id="text"),
        pytest.param('{"t": "{{x}}"}', True, {"x": ["a" * 4]}, id="lone-list"),
        pytest.param('{"t": "{{x}}"}', True, {"x": "\x01\x02"}, id="escapes-count"),
        pytest.param('{"t": "{{x}}"}', True, {"x": "\ud800" * 2}, id="the-slow-way"),
        pytest.param('{"{{x}}": 1}', True, {"x": "a" * 8}, id="key"),
        pytest.param("<{{x}}> #x", False, {"x": "é" * 3}, id="text-body-in-utf8-bytes"),
    ],
)
def test_a_body_renders_up_to_exactly_the_limit_and_one_byte_more_is_refused(
    template: str, json_body: bool, payload: dict[str, Any]
) -> None:
    body = _render_at_most(template, payload, 1 << 20, json_body=json_body)
    assert _render_at_most(template, payload, len(body), json_body=json_body) == body
    with pytest.raises(RenderedBodyTooLarge) as refused:
        _render_at_most(template, payload, len(body) - 1, json_body=json_body)
    limit = len(body) - 1
    assert (
        str(refused.value) == f"the rendered body is larger than HOOKLINE_MAX_RENDERED_BYTES ({limit} bytes)"
    )


@pytest.mark.parametrize(
    ("template", "json_body", "payload"),
    [
        pytest.param(json.dumps({"t": "#x" * 30_000}), True, {"x": "a" * 200_000}, id="text-of-a-string"),
        pytest.param(json.dumps(["{{x}}"] * 30_000), True, {"x": "a" * 200_000}, id="lone-strings"),
        pytest.param(json.dumps(["{{x}}"] * 30_000), True, {"x": ["a" * 1000] * 200}, id="lone-lists"),
        pytest.param(
            json.dumps({"t": "{{x}}" * 30_000}), True, {"x": {"a": "a" * 200_000}}, id="text-of-objects"
        ),
        pytest.param("#x" * 30_000, False, {"x": "a" * 200_000}, id="text-body"),
    ],
)
def test_a_template_repeating_a_large_value_stops_at_the_limit_without_building_the_body(
    template: str, json_body: bool, payload: dict[str, Any]
) -> None:
    """Each would render to 6 GB; counted while rendering, the work stops near the limit, in
    milliseconds (building the body first would take seconds, and gigabytes)."""
    compiled = compile_template(template, json_body=json_body)
    lookup = event_variables(ENVELOPE, payload).lookup
    started = time.perf_counter()
    with pytest.raises(RenderedBodyTooLarge):
        compiled.render(lookup, max_bytes=4 * 1024 * 1024)
    assert time.perf_counter() - started < 0.5


# -- event variables --------------------------------------------------------------------------------------


def test_event_variables_turn_ids_and_times_into_strings_and_ignore_other_envelope_keys() -> None:
    variables = event_variables(
        {"event_id": UUID(int=1), "timestamp": datetime(2024, 5, 1, 10, tzinfo=UTC), "other": 1},
        {"other": 2, "event_id": "shadowed"},
    )
    assert variables.lookup("event_id") == (True, "00000000-0000-0000-0000-000000000001")
    assert variables.lookup("timestamp") == (True, "2024-05-01T10:00:00Z")
    assert variables.lookup("other") == (True, 2)
    assert variables.lookup("event_type") == (False, None)


# -- always valid JSON, and fast --------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
names = st.builds(
    operator.add,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(string.ascii_letters + string.digits + "_", max_size=7),
)
payloads = st.dictionaries(names, json_values | st.dictionaries(names, json_values, max_size=3), max_size=6)
# Lone surrogates (which a JSON parser yields for "\ud800") are repaired to U+FFFD, and integers beyond
# 64 bits take the slow serialiser: the body stays valid JSON, though it no longer holds the value as is.
dirty_scalars = json_scalars | st.just("lone \ud800 surrogate") | st.integers()
dirty_values = st.recursive(
    dirty_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
dirty_payloads = st.dictionaries(
    names, dirty_values | st.dictionaries(names, dirty_values, max_size=3), max_size=6
)


def _paths(payload: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths a placeholder can spell."""
    found = []
    for key, value in payload.items():
        if not NAME.fullmatch(key):
            continue
        found.append(prefix + key)
        if isinstance(value, Mapping):
            found += _paths(value, f"{prefix}{key}.")
    return found


@st.composite
def payloads_and_templates(
    draw: st.DrawFn, payloads: st.SearchStrategy[dict[str, Any]] = payloads
) -> tuple[dict[str, Any], str]:
    payload = draw(payloads)
    paths = [*_paths(payload), "missing", "event_type"]
    refs = st.sampled_from(paths).flatmap(
        lambda p: st.sampled_from([f"{{{{{p}}}}}", f"{{{{ {p} }}}}", f"#{p}", f"#{p}x"])
    )
    text = st.lists(refs | st.text(max_size=5), max_size=4).map("".join)
    template_values = st.recursive(
        text | json_scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
        max_leaves=10,
    )
    return payload, json.dumps(draw(template_values))


@settings(max_examples=250, deadline=None)
@given(payloads_and_templates(dirty_payloads))
def test_any_payload_renders_any_valid_template_to_valid_json(case: tuple[dict[str, Any], str]) -> None:
    payload, template = case
    assert check_template(template, json_body=True, declared=[]) == []
    body = render(template, payload=payload)
    json.loads(body)
    assert body == body.decode("utf-8").encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(payloads)
def test_a_lone_placeholder_renders_the_value_itself(payload: dict[str, Any]) -> None:
    for path in _paths(payload):
        if path.split(".")[0] in ENVELOPE:
            continue  # shadowed by the envelope
        value: Any = payload
        for name in path.split("."):
            value = value[name]
        assert render_json(json.dumps({"v": f"{{{{{path}}}}}"}), payload) == {"v": value}


def test_rendering_a_1kib_template_with_ten_placeholders_takes_microseconds() -> None:
    template = json.dumps(
        {
            "text": "*{{alert_name}}* {{metadata.attributes.priority}} {{timestamp}} {{organization_name}}",
            "severity": "{{severity}}",
            "tags": "{{tags}}",
            "channel": "#alerts",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "Details: {{quote}} / {{multiline}}"}},
                {"type": "context", "elements": [{"type": "plain_text", "text": "x" * 300}] * 2},
            ],
            "meta": {
                "event": "{{event_id}}",
                "type": "#event_type",
                "score": "{{metadata.attributes.score}}",
            },
        }
    )
    assert 900 <= len(template) <= 1200
    compiled = compile_template(template, json_body=True)
    lookup = event_variables(ENVELOPE, PAYLOAD).lookup
    compiled.render(lookup)
    runs = 2000
    started = time.perf_counter()
    for _ in range(runs):
        compiled.render(lookup)
    per_render = (time.perf_counter() - started) / runs
    # Tens of microseconds is the goal; the bound leaves room for a slow, busy CI machine.
    assert per_render < 200e-6
