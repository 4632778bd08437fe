"""The end-to-end benchmark (bench/e2e.py) at a small size, so that it keeps working: every expected
delivery arrives and the JSON line has the documented keys. No speed is asserted here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bench import stages
from bench.e2e import main, run_benchmark
from bench.options import Options
from bench.publisher import PAYLOAD_BYTES, payload
from bench.receiver import ReceiverProcess

KEYS = {
    "mode",
    "workers",
    "events",
    "webhooks",
    "batch",
    "concurrency",
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
    "processes_alive_at_end",
    "delivery_statuses",
    "settled_s",
    "warmup_s",
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


def test_payloads_are_one_kibibyte_of_json() -> None:
    for seq, sent_at in [(0, 0.0), (123_456, 1_750_000_000.123456)]:
        data = payload(seq, "run-x", sent_at)
        assert len(orjson.dumps(data)) == PAYLOAD_BYTES
        assert (data["seq"], data["run"], data["sent_at"]) == (seq, "run-x", sent_at)


@pytest.mark.parametrize(
    "argv",
    [["--batch", "501"], ["--batch", "0"], ["--events", "0"], ["--rate", "-1"], ["--mode", "cluster"]],
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
