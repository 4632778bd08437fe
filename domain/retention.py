"""How long an organisation keeps what it publishes: its retention policy and the ISO 8601 durations
it is written in.

A duration is accepted in weeks, days, hours, minutes and seconds (`P30D`, `P2W`, `PT6S`, `P1DT12H`,
`PT0.5S`). Months and years are refused: their length depends on the date they are counted from, and
a window that erases personal data should mean the same number of seconds every day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

from domain.errors import Problem

MAX_DAYS = 36_500  # a hundred years: longer is forever, which is said with null
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_DURATION = re.compile(
    rf"P(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?",
    re.ASCII,
)
_CALENDAR = re.compile(r"P(?:[\d.,]+Y)?(?:[\d.,]+M)?(?:[\d.,]+W)?(?:[\d.,]+D)?(?:T.*)?", re.ASCII)
_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_SECONDS = MappingProxyType(dict(zip(_UNITS, (604_800, 86_400, 3_600, 60, 1), strict=True)))
EXAMPLE = 'e.g. "P30D", "PT6H", "P2W"'


class BadDuration(ValueError):
    """Text that is not a duration this module accepts; the message says why."""


def parse_duration(text: str) -> timedelta:
    """The length of an ISO 8601 duration in weeks, days, hours, minutes and seconds (see the module);
    raises `BadDuration` for anything else, for zero and for more than `MAX_DAYS`."""
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        if _CALENDAR.fullmatch(text) and ("Y" in text or "M" in text.partition("T")[0]):
            raise BadDuration(
                "months and years are not accepted (their length varies): use weeks or days, " + EXAMPLE
            )
        raise BadDuration(
            f"must be an ISO 8601 duration in weeks, days, hours, minutes or seconds, {EXAMPLE}"
        )
    amounts = {unit: float(n.replace(",", ".")) for unit, n in zip(_UNITS, match.groups(), strict=True) if n}
    if sum(amounts.values()) == 0:
        raise BadDuration("must be longer than zero (null keeps forever)")
    if sum(amount * _SECONDS[unit] for unit, amount in amounts.items()) > MAX_DAYS * 86_400:
        raise BadDuration(f"must be at most {MAX_DAYS} days (null keeps forever)")
    return timedelta(**amounts)


@dataclass(frozen=True)
class RetentionPolicy:
    """Durations as the admin wrote them; None keeps forever."""

    payloads: str | None = None  # past it, event payloads, request and response bodies are erased
    deliveries: str | None = None  # past it, deliveries and their events are removed

    @property
    def payloads_window(self) -> timedelta | None:
        return parse_duration(self.payloads) if self.payloads is not None else None

    @property
    def deliveries_window(self) -> timedelta | None:
        return parse_duration(self.deliveries) if self.deliveries is not None else None


def check_retention_policy(payloads: str | None, deliveries: str | None) -> list[Problem]:
    """Every problem of a policy at once: each duration's, then whether deliveries outlast payloads."""
    problems: list[Problem] = []
    windows: dict[str, timedelta] = {}
    for field, text in (("payloads", payloads), ("deliveries", deliveries)):
        if text is None:
            continue
        try:
            windows[field] = parse_duration(text)
        except BadDuration as bad:
            problems.append(Problem(field, str(bad)))
    if len(windows) == 2 and windows["deliveries"] < windows["payloads"]:
        problems.append(
            Problem("deliveries", "must be at least as long as payloads (a delivery outlives its bodies)")
        )
    return problems
