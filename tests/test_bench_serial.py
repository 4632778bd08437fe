"""bench.serial: the distributed serial share (serve's follower, the events table's lock) and the
cluster cap computed from it, on a small run against real PostgreSQL, Redis, serve and a worker."""

from __future__ import annotations

import json

from bench.options import Options
from bench.serial import run_serial, serial_figures


def test_a_small_distributed_run_measures_the_follower_and_the_lock() -> None:
    result = run_serial(Options(mode="distributed", workers=1, events=100, timeout=60))

    serial = result["serial"]
    assert result["e2e"]["complete"], result["e2e"]
    assert not any(result["e2e"]["log_errors"].values()), result["e2e"]["first_log_error"]
    assert serial["deliveries"] == (result["e2e"]["warmup_events"] + 100) * 1
    # Every delivery's events pass through serve's follower: an event, its delivery's two at least.
    assert serial["follower_applied_per_delivery"] >= 2.5, serial
    assert 0 < serial["follower_cpu_ms_per_delivery"] <= serial["follower_busy_ms_per_delivery"]
    # The worker stores its deliveries' events in insert transactions of several at a time at most.
    assert 0 < serial["insert_transactions_per_delivery"] <= 3
    assert serial["events_per_transaction"] >= 1
    assert serial["lock_hold_ms_per_transaction"]["p50"] > 0
    assert serial["computed_cap_per_s"] == min(serial["cap_follower_cpu_per_s"], serial["cap_lock_per_s"])
    # Caught up from the start, the follower applies every stored event again.
    assert serial["catch_up_applied"] >= serial["deliveries"] * 2.5
    assert 0 < serial["catch_up_cpu_ms_per_delivery"] <= serial["catch_up_busy_ms_per_delivery"]
    assert json.loads(json.dumps(result)) == result


def test_the_cap_is_the_smaller_of_the_two_serial_shares() -> None:
    transactions = [[("id", 1, "topic", b"x")] * 4] * 10  # 10 transactions of 4 events
    work = {"busy_seconds": 0.05, "cpu_seconds": 0.02, "applied": 300.0}

    figures = serial_figures(100, 0.5, work, transactions, 0.0001, [0.001] * 10)

    assert figures["follower_busy_ms_per_delivery"] == 0.5  # 50 ms over 100 deliveries
    assert figures["lock_hold_ms_per_delivery"] == 0.1  # 10 x 1 ms over 100 deliveries
    assert figures["cap_follower_busy_per_s"] == 2000
    assert figures["cap_follower_cpu_per_s"] == 5000  # 20 ms over 100 deliveries
    assert figures["cap_lock_per_s"] == 10_000
    assert figures["computed_cap_per_s"] == 5000
    assert figures["cap_serve_cpu_per_s"] == 2000
    assert figures["events_per_transaction"] == 4
    assert figures["lock_hold_fit"] == {"fixed_ms": None, "per_event_ms": None}  # one size: no slope


def test_the_lock_hold_fit_separates_a_transaction_s_fixed_cost_from_each_event_s() -> None:
    transactions = [[("id", 1, "topic", b"x")] * n for n in (1, 2, 5, 10)]
    holds = [(0.5 + 0.02 * n) / 1000 for n in (1, 2, 5, 10)]  # 0.5 ms and 0.02 ms an event

    figures = serial_figures(10, None, None, transactions, 0.0001, holds)

    assert figures["lock_hold_fit"] == {"fixed_ms": 0.5, "per_event_ms": 0.02}
    assert figures["cap_follower_cpu_per_s"] is None
    assert figures["computed_cap_per_s"] == figures["cap_lock_per_s"]
    assert not figures["target_met"]
