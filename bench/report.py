"""How the benchmarks report: progress on stderr, nearest-rank percentiles, the end-to-end targets, and
the facts about the machine and the code that say which runs compare."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.loop import loop_name
from bench.options import Options

ROOT = Path(__file__).resolve().parent.parent

TARGET_SATURATED_PER_S = 1000.0
TARGET_RATIO_ONE = 0.35
TARGET_RATIO_FAN_OUT = 0.25
TARGET_FIXED_P99_MS = 250.0
TARGET_SERVE_RSS_MB = 300.0
TARGET_RSS_AFTER_DELIVERIES = 100_000
TARGET_SPEEDUP = 1.6
TARGET_PER_REQUEST_SERVE_CPU_MS = 0.45  # a published event's, one a request, nothing delivered
TARGET_PER_REQUEST_RATIO = 0.15
TARGET_HTTP_SERVE_CPU_MS = 0.2  # the same through POST /events/{type}
TARGET_HTTP_RATIO = 0.3
TARGET_SQLITE_BYTES_PER_DELIVERY = 2500.0


def progress(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest sample with at least p % of the samples at or below it."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def percentile_ms(ordered: Sequence[float], p: float) -> float | None:
    """A percentile of samples in seconds, in milliseconds (None: no samples)."""
    return ms(percentile(ordered, p)) if ordered else None


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def cpu_per_delivery(cpu: dict[str, float], deliveries: int) -> float | None:
    """CPU ms that Hookline's processes, and its Redis and PostgreSQL, spent per delivery: a figure
    that other work on the machine changes far less than it changes deliveries/s."""
    spent = sum(seconds for name, seconds in cpu.items() if name not in ("receiver", "bench"))
    return round(spent * 1000 / deliveries, 2) if deliveries else None


def targets(result: dict[str, Any], options: Options) -> dict[str, bool]:
    """{"name": met} for the targets that apply to the run (bench.e2e's docstring lists them)."""
    met: dict[str, bool] = {}
    per_s, ratio = result.get("deliveries_per_s") or 0.0, result.get("ratio") or 0.0
    http = options.via == "http"
    if options.publishing == "per-request" and options.webhooks == 0:
        cpu, target = (
            result.get("serve_cpu_ms_per_event"),
            (TARGET_HTTP_SERVE_CPU_MS if http else TARGET_PER_REQUEST_SERVE_CPU_MS),
        )
        met[f"serve_cpu_ms_per_event<={target:g}"] = cpu is not None and cpu <= target
    elif options.publishing == "per-request" and options.webhooks == 1:
        target = TARGET_HTTP_RATIO if http else TARGET_PER_REQUEST_RATIO
        met[f"ratio>={target:g}"] = ratio >= target
    elif options.publishing == "batches" and options.webhooks == 1:
        met[f"deliveries_per_s>={TARGET_SATURATED_PER_S:g}"] = per_s >= TARGET_SATURATED_PER_S
        met[f"ratio>={TARGET_RATIO_ONE:g}"] = ratio >= TARGET_RATIO_ONE
    elif options.publishing == "batches" and options.webhooks > 1:
        met[f"ratio>={TARGET_RATIO_FAN_OUT:g}"] = ratio >= TARGET_RATIO_FAN_OUT
    elif options.publishing == "fixed-rate" and options.webhooks:
        p99 = result.get("latency_p99_ms")
        met[f"latency_p99_ms<{TARGET_FIXED_P99_MS:g}"] = p99 is not None and p99 < TARGET_FIXED_P99_MS
    stored = result.get("bytes_per_delivery")
    if options.webhooks == 1 and result["store"]["engine"] == "sqlite":
        name = f"bytes_per_delivery<={TARGET_SQLITE_BYTES_PER_DELIVERY:g}"
        met[name] = stored is not None and stored <= TARGET_SQLITE_BYTES_PER_DELIVERY
    serve_rss = result["peak_rss_mb"].get("serve")
    if result["deliveries"] >= TARGET_RSS_AFTER_DELIVERIES:
        met[f"serve_peak_rss_mb<{TARGET_SERVE_RSS_MB:g}"] = (
            serve_rss is not None and serve_rss < TARGET_SERVE_RSS_MB
        )
    return met


def speedup_targets(speedup: float | None) -> dict[str, bool]:
    return {f"speedup>={TARGET_SPEEDUP:g}": speedup is not None and speedup >= TARGET_SPEEDUP}


def machine(load_start: float) -> dict[str, Any]:
    """The machine and the code a run measured: only runs that share these compare."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loop": loop_name(),
        "loadavg_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        **git_state(),
    }


def git_state() -> dict[str, Any]:
    """The commit the code was at, and whether tracked files differed from it (None: not a checkout)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(changed)}
