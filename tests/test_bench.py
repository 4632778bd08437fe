"""The end-to-end benchmark (bench/e2e.py) at a small size, so that it keeps working: every expected
delivery arrives and the JSON line has the documented keys. No speed is asserted here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import retention, stages
from bench.e2e import main, run_benchmark
from bench.options import Options
from bench.publisher import PAYLOAD_BYTES, payload
from bench.receiver import ReceiverProcess

KEYS = {
    "mode",
    "workers",
    "events",
    "webhooks",
    "publishing",
    "via",
    "batch",
    "concurrency",
    "in_flight",
    "rate",
    "delivery_concurrency",
    "deliveries_expected",
    "deliveries",
    "duplicates",
    "missing",
    "complete",
    "publish_errors",
    "first_publish_error",
    "publish_s",
    "publishes_per_s",
    "publish_request_p50_ms",
    "publish_request_p99_ms",
    "max_schedule_lag_ms",
    "duration_s",
    "deliveries_per_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "raw_requests",
    "raw_per_s",
    "raw_latency_p50_ms",
    "raw_latency_p99_ms",
    "ratio",
    "peak_rss_mb",
    "cpu_s",
    "cpu_ms_per_delivery",
    "serve_cpu_ms_per_delivery",
    "serve_cpu_ms_per_event",
    "serve_cpu_ms_per_event_until_quiet",
    "processes_alive_at_end",
    "delivery_statuses",
    "settled_s",
    "warmup_s",
    "warmup_events",
    "bytes_per_delivery",
    "bytes_per_event",
    "store",
    "log_errors",
    "first_log_error",
    "targets",
    "server_dir",
    "python",
    "cpus",
    "loop",
    "loadavg_1m",
    "commit",
    "dirty",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[ReceiverProcess]:
    with ReceiverProcess() as r:
        yield r


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(Options(events=200, timeout=60), id="embedded-saturated"),
        pytest.param(
            Options(mode="distributed", workers=1, events=100, timeout=60), id="distributed-1-worker"
        ),
        # 50 events at 50/s, each to 3 webhooks: the fixed-rate path (publishEvent) and fan-out at once
        pytest.param(Options(webhooks=3, rate=50, duration=1, timeout=60), id="embedded-fan-out-fixed-rate"),
        # one event a publishEvent request, saturated, 32 in flight
        pytest.param(Options(events=300, per_request=True, timeout=60), id="embedded-per-request"),
        pytest.param(
            Options(mode="distributed", workers=1, events=200, per_request=True, timeout=60),
            id="distributed-per-request",
        ),
    ],
)
def test_every_expected_delivery_arrives(options: Options, receiver: ReceiverProcess) -> None:
    result = run_benchmark(options, receiver)

    assert result.keys() >= KEYS, KEYS - result.keys()
    assert json.loads(json.dumps(result)) == result  # one JSON line
    expected = options.total_events * options.webhooks
    assert result["deliveries_expected"] == expected
    assert result["publish_errors"] == 0, result["first_publish_error"]
    assert result["deliveries"] == expected, result
    assert result["missing"] == 0
    assert result["complete"] is True
    assert result["log_errors"] == dict.fromkeys(result["log_errors"], 0), result["first_log_error"]
    assert all(result["processes_alive_at_end"].values())
    assert result["raw_requests"] == expected
    assert result["deliveries_per_s"] > 0
    assert result["raw_per_s"] > 0
    assert result["ratio"] > 0
    assert result["latency_p50_ms"] <= result["latency_p95_ms"] <= result["latency_p99_ms"]
    workers = [f"worker-{n}" for n in range(result["workers"])]
    assert set(result["peak_rss_mb"]) == {"serve", *workers}
    assert all(mb > 0 for mb in result["peak_rss_mb"].values())
    assert result["server_dir"] is None  # cleaned up: nothing went wrong
    # (100 events in batches take serve about one 10 ms clock tick to publish: 0 can be read)
    assert result["serve_cpu_ms_per_event"] > 0 or options.publishing == "batches"
    assert result["serve_cpu_ms_per_event_until_quiet"] >= result["serve_cpu_ms_per_event"] >= 0
    assert result["serve_cpu_ms_per_delivery"] > 0
    assert_the_store_is_measured(result, options)


def test_publishing_one_event_a_request_to_no_webhook_measures_serve_alone(
    receiver: ReceiverProcess,
) -> None:
    options = Options(events=300, webhooks=0, per_request=True, in_flight=16, timeout=60)

    result = run_benchmark(options, receiver)

    assert result.keys() >= KEYS, KEYS - result.keys()
    assert json.loads(json.dumps(result)) == result
    assert (result["publishing"], result["in_flight"], result["batch"]) == ("per-request", 16, None)
    assert result["publish_errors"] == 0, result["first_publish_error"]
    assert result["publishes_per_s"] > 0
    assert result["deliveries_expected"] == result["deliveries"] == result["raw_requests"] == 0
    assert result["complete"] is True
    assert result["deliveries_per_s"] is result["ratio"] is result["raw_per_s"] is None
    assert result["serve_cpu_ms_per_event"] > 0
    assert result["serve_cpu_ms_per_delivery"] is None
    assert result["log_errors"] == dict.fromkeys(result["log_errors"], 0), result["first_log_error"]
    assert set(result["targets"]) == {"serve_cpu_ms_per_event<=0.45"}
    assert_the_store_is_measured(result, options)
    assert result["bytes_per_delivery"] is None


def test_publishing_one_event_a_post_through_plain_http_delivers_every_event(
    receiver: ReceiverProcess,
) -> None:
    options = Options(events=200, webhooks=1, per_request=True, in_flight=8, timeout=60, via="http")

    result = run_benchmark(options, receiver)

    assert (result["publishing"], result["via"]) == ("per-request", "http")
    assert result["publish_errors"] == 0, result["first_publish_error"]
    assert result["complete"] is True
    assert result["deliveries"] == result["deliveries_expected"] == 200
    assert "ratio>=0.3" in result["targets"]


def assert_the_store_is_measured(result: dict[str, Any], options: Options) -> None:
    """The store's size after the run, in all and by table, per delivery and per event."""
    store = result["store"]
    stored_events = result["warmup_events"] + options.total_events
    assert (store["events_stored"], store["deliveries_stored"]) == (
        stored_events,
        stored_events * options.webhooks,
    )
    assert store["engine"] == ("postgresql" if options.mode == "distributed" else "sqlite")
    assert 0 < store["bytes_in_use"] <= store["bytes"]
    tables = store["tables"]
    assert sum(t["bytes"] for t in tables.values()) == store["bytes_in_use"]
    assert list(tables) == sorted(tables, key=lambda name: -tables[name]["bytes"])
    # every measured event was stored (in a table that grew by a row an event at least)
    assert max(t["added_rows"] or 0 for t in tables.values()) >= options.total_events
    assert 0 < store["added_bytes"] <= store["bytes_in_use"]
    assert result["bytes_per_event"] == store["bytes_per_event"] == round(store["bytes"] / stored_events, 1)
    assert store["added_bytes_per_event"] == round(store["added_bytes"] / options.total_events, 1)
    if options.webhooks:
        per_delivery = round(store["bytes"] / (stored_events * options.webhooks), 1)
        assert result["bytes_per_delivery"] == store["bytes_per_delivery"] == per_delivery


def test_payloads_are_one_kibibyte_of_json() -> None:
    for seq, sent_at in [(0, 0.0), (123_456, 1_750_000_000.123456)]:
        data = payload(seq, "run-x", sent_at)
        assert len(orjson.dumps(data)) == PAYLOAD_BYTES
        assert (data["seq"], data["run"], data["sent_at"]) == (seq, "run-x", sent_at)


@pytest.mark.parametrize(
    "argv",
    [
        ["--batch", "501"],
        ["--batch", "0"],
        ["--events", "0"],
        ["--rate", "-1"],
        ["--mode", "cluster"],
        ["--webhooks", "-1"],
        ["--per-request", "--in-flight", "0"],
        ["--per-request", "--rate", "10"],
        ["--compare-workers", "--webhooks", "0"],
    ],
)
def test_bad_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


@pytest.mark.parametrize("webhooks", [1, 3])
def test_the_stages_benchmark_records_every_delivery_and_times_each_stage(
    tmp_path: Path, webhooks: int
) -> None:
    result = stages.run(events=25, webhooks=webhooks, batch=10, directory=tmp_path)

    assert result["deliveries"] == 25 * webhooks
    assert set(result["us_per_delivery"]) == {
        "publish",
        "follow published",
        "fan out",
        "follow fanned out",
        "prepare",
        "record",
        "follow recorded",
    }
    assert all(us > 0 for us in result["us_per_delivery"].values()), result
    assert json.loads(json.dumps(result)) == result


def test_the_retention_benchmark_measures_the_store_with_and_without_a_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A small run of bench.retention: the store's size at each point, every delivery arrived in both
    runs, and fewer deliveries held with the policy than without."""
    argv = [
        "--rate",
        "40",
        "--duration",
        "6",
        "--window",
        "PT2S",
        "--sweep-seconds",
        "1",
        "--sizes-at",
        "4,6",
    ]
    with_policy, without = asyncio.run(retention.main(argv))

    assert with_policy["delivered"] == without["delivered"] == 240
    assert all(point["bytes"] > 0 for point in with_policy["sizes"] + without["sizes"])
    assert with_policy["sizes"][-1]["deliveries_held"] < without["sizes"][-1]["deliveries_held"] == 240
    compared = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert compared["throughput_with_retention_vs_without_percent"] > 0
    assert compared["marginal_bytes_per_delivery_without_retention"] > 0
