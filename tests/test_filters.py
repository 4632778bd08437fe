"""Filter conditions (domain/filters.py): what check_filters refuses, and what each operator matches."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import Problem
from domain.filters import (
    MAX_CONDITIONS,
    MAX_GROUPS,
    MAX_PATTERN,
    MAX_VALUES,
    OPERATORS,
    Condition,
    check_filters,
    compile_filters,
    json_equal,
)

PAYLOAD: dict[str, Any] = {
    "severity": 8,
    "ratio": 0.5,
    "flag": True,
    "zero": 0,
    "name": "Disk full on db-1",
    "nothing": None,
    "tags": ["prod", "db", 3],
    "workspace": {"name": "Paris", "os": {"version": "22.04"}},
    "opened_at": "2024-05-01T10:00:00+02:00",
    "closed_at": "2024-05-01T09:00:00Z",
    "naive_at": "2024-05-01T08:30:00",
    "tickets": [
        {"id": 1, "priority": "high", "labels": ["urgent"]},
        {"id": 2, "priority": "low"},
        {"id": 3, "priority": None},
    ],
    "matrix": [[{"cell": 1}, {"cell": 2}], [{"cell": 3}], 7, "text"],
    "empty_list": [],
    "counts": [1, 5, 9],
}


def matches(field: str, operator: str, values: list[Any] | None, payload: dict[str, Any] = PAYLOAD) -> bool:
    condition = Condition(field, operator, values)
    assert check_filters(((condition,),)) == [], "the case must be a valid condition"
    return compile_filters(((condition,),)).matches(payload)


# -- EQ and NEQ -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("severity", 8, True, id="same-int"),
        pytest.param("severity", 8.0, True, id="int-equals-float"),
        pytest.param("ratio", 0.5, True, id="same-float"),
        pytest.param("severity", "8", False, id="string-is-not-number"),
        pytest.param("flag", True, True, id="same-bool"),
        pytest.param("flag", 1, False, id="true-is-not-1"),
        pytest.param("zero", False, False, id="0-is-not-false"),
        pytest.param("name", "Disk full on db-1", True, id="same-string"),
        pytest.param("name", "disk full on db-1", False, id="case-sensitive"),
        pytest.param("workspace.name", "Paris", True, id="dotted-path"),
        pytest.param("workspace.os.version", "22.04", True, id="deep-dotted-path"),
        pytest.param("workspace", {"name": "Paris", "os": {"version": "22.04"}}, True, id="whole-object"),
        pytest.param("workspace", {"name": "Paris"}, False, id="object-missing-keys"),
        pytest.param("tags", ["prod", "db", 3.0], True, id="whole-list-json-equality"),
        pytest.param("tags", ["db", "prod", 3], False, id="list-order-matters"),
        pytest.param("tags", "prod", False, id="list-at-the-end-is-taken-whole"),
        pytest.param("tickets.priority", "low", True, id="any-element-of-list-on-path"),
        pytest.param("tickets.priority", "medium", False, id="no-element-of-list-on-path"),
        pytest.param("matrix.cell", 3, True, id="nested-lists-on-path"),
        pytest.param("missing", 8, False, id="missing-field"),
        pytest.param("workspace.missing.deeper", 8, False, id="missing-deep-field"),
        pytest.param("name.length", 17, False, id="path-through-string"),
        pytest.param("empty_list.x", 1, False, id="path-through-empty-list"),
    ],
)
def test_eq_is_json_equality_and_neq_its_negation(field: str, value: Any, expected: bool) -> None:
    assert matches(field, "EQ", [value]) is expected
    assert matches(field, "NEQ", [value]) is not expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        pytest.param(8, 8.0, True, id="int-float"),
        pytest.param(True, 1, False, id="bool-int"),
        pytest.param(False, 0.0, False, id="bool-float"),
        pytest.param(None, None, True, id="null-null"),
        pytest.param(None, False, False, id="null-false"),
        pytest.param([1, [2, {"a": 3}]], [1.0, [2, {"a": 3.0}]], True, id="nested"),
        pytest.param([1, [2, {"a": 3}]], [1, [2, {"a": True}]], False, id="nested-bool"),
        pytest.param({"a": 1}, {"a": 1, "b": None}, False, id="extra-key"),
        pytest.param([1, 2], (1, 2), True, id="list-tuple"),
        pytest.param([], {}, False, id="list-object"),
        pytest.param("1", 1, False, id="string-number"),
        pytest.param(2**70, float(2**70), True, id="big-int-float"),
    ],
)
def test_json_equal(left: Any, right: Any, expected: bool) -> None:
    assert json_equal(left, right) is expected
    assert json_equal(right, left) is expected


def test_a_missing_field_and_a_null_field_are_neq_to_anything() -> None:
    assert matches("missing", "NEQ", ["x"]) is True
    assert matches("nothing", "NEQ", ["x"]) is True
    assert matches("missing", "NEQ", [None]) is True


def test_null_is_a_value_but_missing_is_not() -> None:
    assert matches("nothing", "EQ", [None]) is True
    assert matches("missing", "EQ", [None]) is False


# -- IN and NOT_IN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "values", "expected"),
    [
        pytest.param("severity", [1, 8, 9], True, id="int-in-ints"),
        pytest.param("severity", [8.0], True, id="int-in-floats"),
        pytest.param("severity", ["8"], False, id="int-not-in-strings"),
        pytest.param("flag", [1, "true"], False, id="bool-not-in-int-or-string"),
        pytest.param("flag", [False, True], True, id="bool-in-bools"),
        pytest.param("zero", [False], False, id="0-not-in-false"),
        pytest.param("name", ["x", "Disk full on db-1"], True, id="string-in-strings"),
        pytest.param("nothing", [None], True, id="null-in-null"),
        pytest.param("tags", [["prod", "db", 3]], True, id="list-in-lists"),
        pytest.param("workspace.os", [{"version": "22.04"}, 1], True, id="object-in-mixed"),
        pytest.param("tickets.priority", ["critical", "high"], True, id="any-element-on-path"),
        pytest.param("tickets.id", [7, 8], False, id="no-element-on-path"),
        pytest.param("missing", ["x"], False, id="missing-field"),
    ],
)
def test_in_matches_any_value_and_not_in_is_its_negation(
    field: str, values: list[Any], expected: bool
) -> None:
    assert matches(field, "IN", values) is expected
    assert matches(field, "NOT_IN", values) is not expected


# -- CONTAINS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("name", "full", True, id="substring"),
        pytest.param("name", "", True, id="empty-substring"),
        pytest.param("name", "FULL", False, id="substring-case-sensitive"),
        pytest.param("name", 1, False, id="number-in-string"),
        pytest.param("tags", "db", True, id="element-of-list"),
        pytest.param("tags", "d", False, id="no-substring-of-elements"),
        pytest.param("tags", 3.0, True, id="number-element-json-equality"),
        pytest.param("counts", True, False, id="bool-is-not-1"),
        pytest.param("tickets.labels", "urgent", True, id="list-reached-through-list"),
        pytest.param("severity", 8, False, id="number-contains-nothing"),
        pytest.param("workspace", "name", False, id="object-contains-nothing"),
        pytest.param("nothing", "x", False, id="null-contains-nothing"),
        pytest.param("missing", "x", False, id="missing-field"),
    ],
)
def test_contains(field: str, value: Any, expected: bool) -> None:
    assert matches(field, "CONTAINS", [value]) is expected


# -- EXISTS -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "present"),
    [
        pytest.param("severity", True, id="number"),
        pytest.param("zero", True, id="zero"),
        pytest.param("flag", True, id="bool"),
        pytest.param("empty_list", True, id="empty-list"),
        pytest.param("nothing", False, id="null"),
        pytest.param("missing", False, id="missing"),
        pytest.param("workspace.os.version", True, id="deep"),
        pytest.param("tickets.priority", True, id="some-element-has-it"),
        pytest.param("tickets.labels", True, id="one-element-has-it"),
        pytest.param("tickets.missing", False, id="no-element-has-it"),
    ],
)
def test_exists_means_present_and_not_null(field: str, present: bool) -> None:
    assert matches(field, "EXISTS", None) is present
    assert matches(field, "EXISTS", []) is present
    assert matches(field, "EXISTS", [True]) is present
    assert matches(field, "EXISTS", [False]) is not present


def test_exists_false_over_a_list_means_no_element_has_a_value() -> None:
    payload = {"tickets": [{"priority": None}, {}]}
    assert matches("tickets.priority", "EXISTS", [False], payload) is True
    assert matches("tickets.priority", "EXISTS", [True], payload) is False


# -- GT, GTE, LT, LTE -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        pytest.param("severity", "GT", 7, True, id="int-gt"),
        pytest.param("severity", "GT", 8, False, id="int-gt-equal"),
        pytest.param("severity", "GTE", 8.0, True, id="int-gte-float"),
        pytest.param("severity", "LT", 8.5, True, id="int-lt-float"),
        pytest.param("ratio", "LTE", 0.5, True, id="float-lte"),
        pytest.param("ratio", "LT", 0, False, id="float-lt-zero"),
        pytest.param("flag", "GT", 0, False, id="bool-is-not-a-number"),
        pytest.param("zero", "GTE", 0, True, id="zero"),
        pytest.param("name", "GT", 0, False, id="string-against-number"),
        pytest.param("opened_at", "GT", 0, False, id="timestamp-against-number"),
        pytest.param("severity", "GT", "2024-01-01T00:00:00Z", False, id="number-against-timestamp"),
        pytest.param("name", "GT", "2024-01-01T00:00:00Z", False, id="non-timestamp-string"),
        pytest.param("nothing", "LT", 1, False, id="null"),
        pytest.param("missing", "LT", 1, False, id="missing"),
        pytest.param("tags", "GT", 0, False, id="list-at-the-end"),
        pytest.param("tickets.id", "GT", 2, True, id="any-element-on-path"),
        pytest.param("tickets.id", "GT", 3, False, id="no-element-on-path"),
        pytest.param("matrix.cell", "LTE", 1, True, id="nested-lists-on-path"),
        # 10:00+02:00 is 08:00Z: earlier than 09:00Z although its text sorts after it.
        pytest.param("opened_at", "LT", "2024-05-01T09:00:00Z", True, id="offset-compared-as-instant"),
        pytest.param("opened_at", "GTE", "2024-05-01T08:00:00Z", True, id="same-instant-gte"),
        pytest.param("opened_at", "GT", "2024-05-01T08:00:00+00:00", False, id="same-instant-gt"),
        pytest.param("closed_at", "GT", "2024-05-01T10:30:00+02:00", True, id="z-against-offset"),
        pytest.param("naive_at", "GT", "2024-05-01T08:00:00Z", True, id="naive-is-utc"),
        pytest.param("naive_at", "LT", "2024-05-01T10:00:00+01:00", True, id="naive-against-offset"),
        pytest.param("closed_at", "LT", "2024-05-02", True, id="date-only-bound"),
        pytest.param("closed_at", "LTE", "2024-05-01T09:00:00z", True, id="lower-case-z"),
    ],
)
def test_ordering(field: str, operator: str, value: Any, expected: bool) -> None:
    assert matches(field, operator, [value]) is expected


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:00",
        "not a time",
        "2024-13-01T00:00:00Z",
        "\ud800",
        "x" * 10_000,
        2**80,
        -(2**80),
        float("inf"),
        float("nan"),
        True,
    ],
)
def test_ordering_on_extreme_values_never_raises(value: Any) -> None:
    payload = {"v": value}
    for operator in ("GT", "GTE", "LT", "LTE"):
        for bound in (0, 1.5, "2024-01-01T00:00:00Z"):
            assert isinstance(matches("v", operator, [bound], payload), bool)


# -- MATCHES ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "pattern", "expected"),
    [
        pytest.param("name", "full", True, id="search-not-match"),
        pytest.param("name", "^Disk", True, id="anchored"),
        pytest.param("name", "^full", False, id="anchored-no-match"),
        pytest.param("name", r"db-\d+$", True, id="digits"),
        pytest.param("name", "(?i)DISK", True, id="case-insensitive-flag"),
        pytest.param("severity", "8", False, id="number-is-not-a-string"),
        pytest.param("tags", "prod", False, id="list-is-not-a-string"),
        pytest.param("tickets.priority", "^h", True, id="any-element-on-path"),
        pytest.param("nothing", ".*", False, id="null"),
        pytest.param("missing", ".*", False, id="missing"),
    ],
)
def test_matches_is_an_re2_search_on_strings(field: str, pattern: str, expected: bool) -> None:
    assert matches(field, "MATCHES", [pattern]) is expected


def test_matches_on_unicode_and_lone_surrogates() -> None:
    assert matches("v", "MATCHES", ["^é.$"], {"v": "éà"}) is True
    assert matches("v", "MATCHES", ["a"], {"v": "a\ud800"}) is False


def test_catastrophic_backtracking_pattern_runs_in_linear_time() -> None:
    started = time.perf_counter()
    assert matches("v", "MATCHES", ["(a+)+$"], {"v": "a" * 50_000 + "b"}) is False
    assert time.perf_counter() - started < 0.5


# -- groups -----------------------------------------------------------------------------------------------


def test_no_groups_match_every_event() -> None:
    assert compile_filters(()).matches({}) is True
    assert compile_filters(()).matches(PAYLOAD) is True


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param([[("severity", "GT", 5), ("name", "CONTAINS", "Disk")]], True, id="and-both-true"),
        pytest.param([[("severity", "GT", 5), ("name", "CONTAINS", "CPU")]], False, id="and-one-false"),
        pytest.param([[("severity", "GT", 9)], [("name", "CONTAINS", "Disk")]], True, id="or-second-true"),
        pytest.param([[("severity", "GT", 9)], [("name", "CONTAINS", "CPU")]], False, id="or-both-false"),
    ],
)
def test_groups_are_ored_and_conditions_anded(
    groups: list[list[tuple[str, str, Any]]], expected: bool
) -> None:
    filters = tuple(tuple(Condition(f, op, [v]) for f, op, v in group) for group in groups)
    assert check_filters(filters) == []
    assert compile_filters(filters).matches(PAYLOAD) is expected


# -- check_filters ----------------------------------------------------------------------------------------


def one(condition: Condition) -> list[str]:
    return [p.field for p in check_filters(((condition,),))]


@pytest.mark.parametrize(
    "condition",
    [
        Condition("a", "EQ", [1]),
        Condition("a.b.c", "NEQ", [{"x": [1]}]),
        Condition("a", "IN", [1, "x", None, [1], {"a": 1}]),
        Condition("a", "NOT_IN", ["x"] * MAX_VALUES),
        Condition("a", "CONTAINS", ["x"]),
        Condition("a", "CONTAINS", [1]),
        Condition("a", "EXISTS", None),
        Condition("a", "EXISTS", []),
        Condition("a", "EXISTS", [False]),
        Condition("a", "GT", [1]),
        Condition("a", "GTE", [-1.5]),
        Condition("a", "LT", ["2024-01-01T00:00:00Z"]),
        Condition("a", "LTE", ["2024-01-01T00:00:00.5+05:30"]),
        Condition("a", "MATCHES", ["^a.*b$"]),
        Condition("a", "MATCHES", ["x" * MAX_PATTERN]),
        Condition("with space.é", "EQ", [1]),
    ],
    ids=lambda c: f"{c.operator}-{c.field}",
)
def test_valid_conditions_have_no_problem(condition: Condition) -> None:
    assert one(condition) == []


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        pytest.param(Condition("", "EQ", [1]), "field", id="empty-field"),
        pytest.param(Condition("  ", "EQ", [1]), "field", id="blank-field"),
        pytest.param(Condition("a..b", "EQ", [1]), "field", id="empty-segment"),
        pytest.param(Condition(".a", "EQ", [1]), "field", id="leading-dot"),
        pytest.param(Condition("a.", "EQ", [1]), "field", id="trailing-dot"),
        pytest.param(Condition("a", "LIKE", [1]), "operator", id="unknown-operator"),
        pytest.param(Condition("a", "eq", [1]), "operator", id="lower-case-operator"),
        pytest.param(Condition("a", "EQ", None), "values", id="eq-without-value"),
        pytest.param(Condition("a", "EQ", [1, 2]), "values", id="eq-with-two-values"),
        pytest.param(Condition("a", "NEQ", []), "values", id="neq-without-value"),
        pytest.param(Condition("a", "CONTAINS", ["a", "b"]), "values", id="contains-two-values"),
        pytest.param(Condition("a", "IN", []), "values", id="in-empty"),
        pytest.param(Condition("a", "NOT_IN", None), "values", id="not-in-none"),
        pytest.param(Condition("a", "IN", [1] * (MAX_VALUES + 1)), "values", id="too-many-values"),
        pytest.param(Condition("a", "EXISTS", [1]), "values", id="exists-with-number"),
        pytest.param(Condition("a", "EXISTS", [True, False]), "values", id="exists-with-two"),
        pytest.param(Condition("a", "EXISTS", ["true"]), "values", id="exists-with-string"),
        pytest.param(Condition("a", "GT", ["8"]), "values", id="gt-with-numeric-string"),
        pytest.param(Condition("a", "GTE", [True]), "values", id="gte-with-bool"),
        pytest.param(Condition("a", "LT", [None]), "values", id="lt-with-null"),
        pytest.param(Condition("a", "LTE", [[1]]), "values", id="lte-with-list"),
        pytest.param(Condition("a", "LT", ["2024-02-30T00:00:00Z"]), "values", id="lt-impossible-date"),
        pytest.param(Condition("a", "GT", [float("nan")]), "values", id="gt-nan"),
        pytest.param(Condition("a", "GT", []), "values", id="gt-without-value"),
        pytest.param(Condition("a", "MATCHES", [1]), "values", id="matches-number"),
        pytest.param(Condition("a", "MATCHES", ["a", "b"]), "values", id="matches-two"),
        pytest.param(Condition("a", "MATCHES", ["x" * (MAX_PATTERN + 1)]), "values", id="matches-too-long"),
        pytest.param(Condition("a", "MATCHES", ["(a"]), "values", id="matches-unbalanced"),
        pytest.param(Condition("a", "MATCHES", ["(?<=a)b"]), "values", id="matches-lookbehind"),
        pytest.param(Condition("a", "MATCHES", [r"(a)\1"]), "values", id="matches-backreference"),
        pytest.param(Condition("a", "MATCHES", ["\ud800"]), "values", id="matches-lone-surrogate"),
    ],
)
def test_invalid_condition_is_refused_on_the_right_field(condition: Condition, field: str) -> None:
    assert one(condition) == [f"filters[0].conditions[0].{field}"]


def test_an_invalid_regex_is_reported_with_re2s_message() -> None:
    (problem,) = check_filters(((Condition("a", "MATCHES", ["(a"]),),))
    assert problem == Problem(
        "filters[0].conditions[0].values", "is not a valid regular expression: missing ): (a"
    )


def test_an_unknown_operator_hides_no_field_problem_and_needs_no_values_check() -> None:
    assert one(Condition("", "LIKE", [1, 2, 3])) == [
        "filters[0].conditions[0].field",
        "filters[0].conditions[0].operator",
    ]


def test_every_problem_is_reported_at_once_with_its_input_path() -> None:
    filters = (
        (Condition("ok", "EQ", [1]), Condition("", "EQ", [1]), Condition("a", "GT", ["soon"])),
        (),
        (Condition("a..b", "MATCHES", ["("]), Condition("a", "SOMETIMES", None)),
    )
    assert [p.field for p in check_filters(filters)] == [
        "filters[0].conditions[1].field",
        "filters[0].conditions[2].values",
        "filters[1].conditions",
        "filters[2].conditions[0].field",
        "filters[2].conditions[0].values",
        "filters[2].conditions[1].operator",
    ]


def test_limits_on_groups_and_conditions() -> None:
    condition = Condition("a", "EXISTS")
    assert check_filters(((condition,),) * MAX_GROUPS) == []
    assert check_filters(((condition,) * MAX_CONDITIONS,)) == []
    assert [p.field for p in check_filters(((condition,),) * (MAX_GROUPS + 1))] == ["filters"]
    assert [p.field for p in check_filters(((condition,) * (MAX_CONDITIONS + 1),))] == [
        "filters[0].conditions"
    ]


# -- never raises -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.just("lone \ud800 surrogate"),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from("abc"), children, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.dictionaries(st.sampled_from("abc"), json_values, max_size=4)
fields = st.lists(st.sampled_from("abc"), min_size=1, max_size=3).map(".".join)
valid_values: dict[str, st.SearchStrategy[list[Any] | None]] = {
    "EQ": st.lists(json_values, min_size=1, max_size=1),
    "NEQ": st.lists(json_values, min_size=1, max_size=1),
    "IN": st.lists(json_values, min_size=1, max_size=4),
    "NOT_IN": st.lists(json_values, min_size=1, max_size=4),
    "CONTAINS": st.lists(json_values, min_size=1, max_size=1),
    "EXISTS": st.none() | st.lists(st.booleans(), max_size=1),
    "GT": st.sampled_from([[0], [1.5], ["2024-01-01T00:00:00Z"]]),
    "GTE": st.sampled_from([[-3], ["2024-01-01"]]),
    "LT": st.sampled_from([[10**30], ["2024-01-01T00:00:00+05:00"]]),
    "LTE": st.sampled_from([[0.0], ["1999-12-31T23:59:59"]]),
    "MATCHES": st.sampled_from([["a"], ["^$"], ["(?i)b+"]]),
}
conditions = st.sampled_from(OPERATORS).flatmap(
    lambda op: st.builds(Condition, fields, st.just(op), valid_values[op])
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(conditions, min_size=1, max_size=3).map(tuple), max_size=3).map(tuple),
    payloads,
)
def test_matches_never_raises_on_any_json_payload(
    filters: tuple[tuple[Condition, ...], ...], payload: dict[str, Any]
) -> None:
    assert check_filters(filters) == []
    assert isinstance(compile_filters(filters).matches(payload), bool)


@settings(max_examples=200, deadline=None)
@given(conditions, payloads)
def test_negated_operators_are_exact_negations(condition: Condition, payload: dict[str, Any]) -> None:
    negations = {"EQ": "NEQ", "IN": "NOT_IN"}
    if condition.operator not in negations:
        return
    negated = Condition(condition.field, negations[condition.operator], condition.values)
    assert compile_filters(((condition,),)).matches(payload) != compile_filters(((negated,),)).matches(
        payload
    )
