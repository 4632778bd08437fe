"""The retention policy's rules, without a server: which durations are accepted, and every problem of a
policy named by its field at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput, Problem
from domain.organizations import Organization
from domain.retention import MAX_DAYS, BadDuration, RetentionPolicy, check_retention_policy, parse_duration


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("P30D", timedelta(days=30)),
        ("PT6S", timedelta(seconds=6)),
        ("PT2S", timedelta(seconds=2)),
        ("P2W", timedelta(weeks=2)),
        ("PT6H", timedelta(hours=6)),
        ("PT90M", timedelta(minutes=90)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P1DT2H3M4S", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1,5H", timedelta(minutes=90)),
        (f"P{MAX_DAYS}D", timedelta(days=MAX_DAYS)),
    ],
)
def test_durations_in_weeks_days_hours_minutes_and_seconds_are_accepted(text: str, length: timedelta) -> None:
    assert parse_duration(text) == length


@pytest.mark.parametrize("text", ["P1Y", "P1M", "P1Y2M", "P1Y2M10DT2H", "P0.5Y"])
def test_months_and_years_are_refused_saying_why(text: str) -> None:
    with pytest.raises(BadDuration, match="months and years are not accepted"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "P1DT", "30D", "p30d", "P30", "PT5X", "-P1D", "P 1D", "P1D ", "P1H", "thirty days"],
)
def test_text_that_is_not_a_duration_is_refused_with_examples(text: str) -> None:
    with pytest.raises(BadDuration, match="ISO 8601 duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P0D", "PT0S", "P0W0DT0H0M0S"])
def test_zero_is_refused_as_forever_is_null(text: str) -> None:
    with pytest.raises(BadDuration, match="longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize("text", [f"P{MAX_DAYS + 1}D", "P99999999999999W", "PT" + "9" * 400 + "S"])
def test_more_than_a_hundred_years_is_refused(text: str) -> None:
    with pytest.raises(BadDuration, match=f"at most {MAX_DAYS} days"):
        parse_duration(text)


def outcome(text: str) -> timedelta | str:
    """The length of a duration, or the reason it is refused."""
    try:
        return parse_duration(text)
    except BadDuration as refused:
        return str(refused)


@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=40))
def test_any_text_is_a_duration_or_refused_with_a_reason_never_an_error(text: str) -> None:
    answer = outcome(text)

    assert answer if isinstance(answer, str) else timedelta(0) < answer <= timedelta(days=MAX_DAYS)


@given(st.from_regex(r"P(\d{1,6}W)?(\d{1,6}D)?(T(\d{1,6}H)?(\d{1,6}M)?(\d{1,6}S)?)?", fullmatch=True))
def test_text_shaped_like_a_duration_is_never_an_error(text: str) -> None:
    assert outcome(text)


def test_a_policy_of_nulls_or_of_good_durations_has_no_problem() -> None:
    assert check_retention_policy(None, None) == []
    assert check_retention_policy("P30D", None) == []
    assert check_retention_policy(None, "PT6S") == []
    assert check_retention_policy("PT2S", "PT6S") == []
    assert check_retention_policy("P7D", "P1W") == [], "equal windows are allowed"


def test_every_problem_of_a_policy_is_named_by_its_field_at_once() -> None:
    problems = check_retention_policy("P1M", "soon")

    assert [p.field for p in problems] == ["payloads", "deliveries"]
    assert "months and years" in problems[0].message
    assert "ISO 8601 duration" in problems[1].message


def test_deliveries_shorter_than_payloads_is_named_as_deliveries() -> None:
    assert check_retention_policy("P30D", "P7D") == [
        Problem("deliveries", "must be at least as long as payloads (a delivery outlives its bodies)")
    ]


def test_the_policy_gives_its_windows_as_lengths() -> None:
    policy = RetentionPolicy(payloads="PT2S", deliveries=None)

    assert (policy.payloads_window, policy.deliveries_window) == (timedelta(seconds=2), None)


def test_an_organization_records_a_new_policy_with_its_actor_and_refuses_a_bad_one() -> None:
    organization = Organization(name="acme")
    assert organization.retention_policy == RetentionPolicy()

    organization.set_retention_policy("PT2S", "PT6S", actor="key-1")

    assert organization.retention_policy == RetentionPolicy("PT2S", "PT6S")
    recorded = organization.collect_events()[-1]
    assert type(recorded).__qualname__ == "Organization.RetentionPolicySet"
    assert (vars(recorded)["payloads"], vars(recorded)["deliveries"], vars(recorded)["actor"]) == (
        "PT2S",
        "PT6S",
        "key-1",
    )
    with pytest.raises(InvalidInput) as refused:
        organization.set_retention_policy("P1Y", "P1D", actor="key-1")
    assert [p.field for p in refused.value.problems] == ["payloads"]
    assert organization.retention_policy == RetentionPolicy("PT2S", "PT6S")


def test_setting_the_same_policy_again_records_nothing() -> None:
    organization = Organization(name="acme")
    organization.set_retention_policy("P30D", None, actor="key-1")
    organization.collect_events()

    organization.set_retention_policy("P30D", None, actor="key-2")

    assert organization.collect_events() == []
