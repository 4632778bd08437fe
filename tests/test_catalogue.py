"""The event-type catalogue: the built-in types, the variables of a sample, the rules for defining one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.built_in_types import BUILT_IN
from domain.catalogue import (
    ENVELOPE_VARIABLES,
    MAX_SAMPLE_BYTES,
    MAX_SAMPLE_DEPTH,
    EventTypeSpec,
    check_event_type,
    variables_of,
)
from domain.errors import Problem

WORKSPACE = (
    "workspace_id",
    "workspace_name",
    "workspace_last_user",
    "workspace_reporting_group_id",
    "workspace_reporting_group_name",
)
# The built-in catalogue as CONTRACT.md ("Event types") states it, with the variables it names for each.
CONTRACT_CATALOGUE: dict[str, tuple[str, ...]] = {
    "alert.activated": (
        "alert_name",
        "alert_information",
        "alert_start",
        "alert_element",
        *WORKSPACE,
    ),
    "microservice.executed": (
        "operation_id",
        "microservice_id",
        "microservice_name",
        "operation_startdate",
        "operation_enddate",
        "operation_result",
        *WORKSPACE,
    ),
    "object.created": (),
    "object.modified": (),
    "object.deleted": (),
    "operation.executed": (),
    "operation.executed_in_workspace": (),
    "ticket.created": (),
    "ticket.updated": (),
    "ticket.deleted": (),
    "rule.violation": ("time", "name", "description"),
    "reserved_instance.surplus": ("time", "name", "description"),
    "reserved_instance.deficit": ("time", "name", "description"),
    "alert.sent": (
        "metadata.TenantId",
        "metadata.OwnerId",
        "metadata.attributes.priority",
        "metadata.attributes.incidentName",
        "metadata.tags.facilities",
    ),
    # The operator events of the contract's "Operations", exactly its fields.
    "hookline.webhook.failing": (
        "webhook_id",
        "webhook_name",
        "consecutive_failures",
        "failing_since",
        "last_status_code",
        "last_error",
    ),
    "hookline.webhook.disabled": ("webhook_id", "webhook_name", "reason"),
    "hookline.delivery.failed": (
        "delivery_id",
        "webhook_id",
        "webhook_name",
        "event_id",
        "event_type",
        "attempts",
        "last_status_code",
        "last_error",
    ),
}


def fields(problems: list[Problem]) -> list[str]:
    return [problem.field for problem in problems]


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: {"a": {"a": … {"a": 1}}}."""
    payload: dict[str, Any] = {"a": 1}
    for _ in range(depth - 1):
        payload = {"a": payload}
    return payload


# The built-in catalogue


def test_the_built_in_catalogue_is_exactly_the_contracts() -> None:
    assert set(BUILT_IN) == set(CONTRACT_CATALOGUE)


@pytest.mark.parametrize(("name", "contract_variables"), CONTRACT_CATALOGUE.items())
def test_each_built_in_type_declares_the_envelope_and_the_contracts_variables(
    name: str, contract_variables: tuple[str, ...]
) -> None:
    spec = BUILT_IN[name]
    assert spec.name == name
    assert spec.sample_payload
    assert spec.variables[: len(ENVELOPE_VARIABLES)] == ENVELOPE_VARIABLES
    assert set(contract_variables) <= set(spec.variables)
    assert spec.variables == variables_of(spec.sample_payload)


@pytest.mark.parametrize("name", CONTRACT_CATALOGUE)
def test_each_built_in_type_is_described_in_one_sentence(name: str) -> None:
    description = BUILT_IN[name].description
    assert description
    assert description[0].isupper()
    assert description.endswith(".")
    assert description.count(". ") == 0


@pytest.mark.parametrize("name", CONTRACT_CATALOGUE)
def test_each_built_in_sample_would_be_accepted_as_a_definition(name: str) -> None:
    assert check_event_type("acme.copy", BUILT_IN[name].description, BUILT_IN[name].sample_payload) == []


@pytest.mark.parametrize("name", CONTRACT_CATALOGUE)
def test_each_built_in_sample_survives_a_json_round_trip(name: str) -> None:
    sample = BUILT_IN[name].sample_payload
    assert json.loads(json.dumps(sample)) == sample


def test_the_samples_name_what_the_contract_gives_as_examples() -> None:
    assert "workspace_name" in BUILT_IN["alert.activated"].variables
    assert "metadata.attributes.priority" in BUILT_IN["alert.sent"].variables
    assert "workspace.name" in BUILT_IN["operation.executed_in_workspace"].variables


def test_sample_values_have_their_json_types() -> None:
    alert = BUILT_IN["alert.activated"].sample_payload
    assert isinstance(alert["workspace_reporting_group_id"], int)
    assert alert["alert_start"].endswith("Z")
    surplus = BUILT_IN["reserved_instance.surplus"].sample_payload
    assert isinstance(surplus["surplus_count"], int)
    assert isinstance(BUILT_IN["alert.sent"].sample_payload["metadata"]["tags"]["facilities"], list)


def test_the_built_in_catalogue_cannot_be_extended_in_place() -> None:
    with pytest.raises(TypeError):
        BUILT_IN["acme.thing"] = EventTypeSpec.of("acme.thing", None, {})  # type: ignore[index]


# Variables


def test_an_empty_payload_declares_only_the_envelope() -> None:
    assert variables_of({}) == ENVELOPE_VARIABLES


def test_nested_objects_give_every_key_and_dotted_path_in_document_order() -> None:
    payload = {
        "severity": 3,
        "workspace": {"name": "LT-PAR-0412", "os": {"name": "Windows", "version": "11"}},
        "source": "monitor",
    }
    assert variables_of(payload) == (
        *ENVELOPE_VARIABLES,
        "severity",
        "workspace",
        "workspace.name",
        "workspace.os",
        "workspace.os.name",
        "workspace.os.version",
        "source",
    )


def test_a_list_of_objects_gives_its_path_and_the_paths_of_its_first_object_without_an_index() -> None:
    payload = {"tickets": [{"id": 1, "requester": {"email": "a@example.com"}}, {"id": 2, "extra": True}]}
    assert variables_of(payload)[len(ENVELOPE_VARIABLES) :] == (
        "tickets",
        "tickets.id",
        "tickets.requester",
        "tickets.requester.email",
    )


def test_a_list_reads_its_first_object_even_after_scalars() -> None:
    assert variables_of({"items": [None, 3, {"sku": "A-1"}]})[len(ENVELOPE_VARIABLES) :] == (
        "items",
        "items.sku",
    )


@pytest.mark.parametrize(
    "value", [[], ["sms", "email"], [[{"deep": 1}]], 3, "text", None, True, 1.5], ids=repr
)
def test_lists_of_scalars_or_lists_and_scalars_give_only_their_own_path(value: Any) -> None:
    assert variables_of({"value": value}) == (*ENVELOPE_VARIABLES, "value")


def test_a_payload_key_that_repeats_an_envelope_variable_is_listed_once_where_the_envelope_has_it() -> None:
    assert variables_of({"timestamp": "2025-06-03T09:00:00Z", "host": "db1"}) == (*ENVELOPE_VARIABLES, "host")


json_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(json_keys, children, max_size=3),
    max_leaves=20,
)


@given(st.dictionaries(json_keys, json_values, max_size=5))
def test_variables_start_with_the_envelope_hold_every_top_level_key_and_repeat_nothing(
    payload: dict[str, Any],
) -> None:
    variables = variables_of(payload)
    assert variables[: len(ENVELOPE_VARIABLES)] == ENVELOPE_VARIABLES
    assert set(payload) <= set(variables)
    assert len(variables) == len(set(variables))


def test_a_spec_computes_its_variables_and_keeps_its_own_copy_of_the_sample() -> None:
    sample: dict[str, Any] = {"monitor": {"name": "disk"}}
    spec = EventTypeSpec.of("monitor.alert", "A monitor fired.", sample)
    sample["monitor"]["threshold"] = 90
    assert spec == EventTypeSpec(
        name="monitor.alert",
        description="A monitor fired.",
        sample_payload={"monitor": {"name": "disk"}},
        variables=(*ENVELOPE_VARIABLES, "monitor", "monitor.name"),
    )


# Defining an event type


GOOD_SAMPLE = {"monitor": {"name": "disk", "threshold": 90}, "hosts": [{"name": "db1"}]}


@pytest.mark.parametrize(
    "name",
    [
        "monitor",
        "monitor.alert",
        "reserved_instance.expiring",
        "remote_action.failed_in_workspace",
        "v2.host9.down",
        "a" * 100,
    ],
)
def test_a_well_formed_new_definition_is_accepted(name: str) -> None:
    assert check_event_type(name, "A monitor fired.", GOOD_SAMPLE) == []


def test_description_is_optional_and_may_be_as_long_as_the_limit() -> None:
    assert check_event_type("monitor.alert", None, {}) == []
    assert check_event_type("monitor.alert", "d" * 1000, {}) == []


@pytest.mark.parametrize(
    ("name", "message_part"),
    [
        ("", "empty"),
        ("a" * 101, "at most 100"),
        ("Monitor.Alert", "lowercase words"),
        ("monitor-alert", "lowercase words"),
        ("monitor alert", "lowercase words"),
        ("monitor..alert", "lowercase words"),
        ("monitor._alert", "lowercase words"),
        (".monitor", "lowercase words"),
        ("monitor.", "lowercase words"),
        ("monitor_", "lowercase words"),
        ("1monitor", "lowercase words"),
        ("monitor.2nd", "lowercase words"),
        ("monitor.alert\n", "lowercase words"),
        ("monitor/alert", "lowercase words"),
        ("alert.activated", "built in"),
        ("reserved_instance.deficit", "built in"),
    ],
)
def test_a_bad_name_is_refused_naming_the_name_field(name: str, message_part: str) -> None:
    (problem,) = check_event_type(name, None, GOOD_SAMPLE)
    assert problem.field == "name"
    assert message_part in problem.message


def test_a_description_over_1000_characters_is_refused() -> None:
    (problem,) = check_event_type("monitor.alert", "d" * 1001, GOOD_SAMPLE)
    assert problem == Problem("description", "must be at most 1000 characters")


@pytest.mark.parametrize(
    "sample",
    [None, [], [{"a": 1}], "{}", 3, True],
    ids=["null", "empty list", "list of objects", "string", "number", "boolean"],
)
def test_a_sample_payload_that_is_not_an_object_is_refused(sample: Any) -> None:
    assert check_event_type("monitor.alert", None, sample) == [
        Problem("samplePayload", "must be a JSON object")
    ]


@pytest.mark.parametrize(
    ("sample", "path"),
    [
        ({"bad-key": 1}, "bad-key"),
        ({"has space": 1}, "has space"),
        ({"1st": 1}, "1st"),
        ({"": 1}, ""),
        ({"a.b": 1}, "a.b"),
        ({"naïve": 1}, "naïve"),
        ({"workspace": {"reporting-group": 1}}, "workspace.reporting-group"),
        ({"tickets": [{"id": 1}, {"id": 2, "due-at": "x"}]}, "tickets[1].due-at"),
        ({7: "x"}, "7"),
    ],
)
def test_a_key_that_cannot_be_a_variable_is_refused_naming_its_path(
    sample: dict[Any, Any], path: str
) -> None:
    (problem,) = check_event_type("monitor.alert", None, sample)
    assert problem.field == "samplePayload"
    assert f'"{path}"' in problem.message


def test_a_sample_as_deep_as_the_limit_is_accepted_and_one_level_deeper_is_refused() -> None:
    assert check_event_type("monitor.alert", None, nested(MAX_SAMPLE_DEPTH)) == []
    (problem,) = check_event_type("monitor.alert", None, nested(MAX_SAMPLE_DEPTH + 1))
    assert problem.field == "samplePayload"
    assert "at most 10 levels" in problem.message


def test_lists_count_as_levels() -> None:
    sample: Any = {"a": 1}
    for _ in range(MAX_SAMPLE_DEPTH):
        sample = [sample]
    (problem,) = check_event_type("monitor.alert", None, {"list": sample})
    assert "at most 10 levels" in problem.message
    assert "list[0][0]" in problem.message


def test_a_sample_nested_far_too_deep_is_refused_without_exhausting_the_stack() -> None:
    assert fields(check_event_type("monitor.alert", None, nested(100_000))) == ["samplePayload"]


def test_a_sample_up_to_64_kib_of_compact_json_is_accepted_and_a_byte_more_is_refused() -> None:
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    fits = {"k": "x" * (MAX_SAMPLE_BYTES - overhead)}
    assert check_event_type("monitor.alert", None, fits) == []
    too_big = {"k": "x" * (MAX_SAMPLE_BYTES - overhead + 1)}
    assert check_event_type("monitor.alert", None, too_big) == [
        Problem("samplePayload", "must be at most 64 KiB as compact JSON")
    ]


def test_the_size_limit_counts_bytes_not_characters() -> None:
    (problem,) = check_event_type("monitor.alert", None, {"k": "é" * (MAX_SAMPLE_BYTES // 2)})
    assert "64 KiB" in problem.message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}, b"bytes"], ids=repr)
def test_a_sample_holding_something_json_cannot_is_refused(value: Any) -> None:
    assert check_event_type("monitor.alert", None, {"value": value}) == [
        Problem("samplePayload", "must hold only JSON values")
    ]


def test_every_problem_is_reported_at_once() -> None:
    sample = {"bad-key": "x" * MAX_SAMPLE_BYTES, "ok": nested(MAX_SAMPLE_DEPTH), "also bad": 1}
    problems = check_event_type("Bad Name", "d" * 1001, sample)
    assert fields(problems) == ["name", "description", *["samplePayload"] * 4]
    messages = " | ".join(problem.message for problem in problems)
    assert "levels" in messages
    assert "64 KiB" in messages
    assert '"bad-key"' in messages
    assert '"also bad"' in messages


@pytest.mark.parametrize("name", [name for name in CONTRACT_CATALOGUE if name.startswith("hookline.")])
def test_each_operator_events_sample_holds_exactly_the_contracts_fields(name: str) -> None:
    assert tuple(BUILT_IN[name].sample_payload) == CONTRACT_CATALOGUE[name]
