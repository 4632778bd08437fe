"""The shipped Prometheus rules and Grafana dashboard: the rules pass `promtool check rules` and their unit
tests (`promtool test rules`), every alert has a test that fires it, and every metric either file names
is one Hookline exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from hookline.metrics import Metrics
from hookline.runtime import Liveness

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hookline.json"
INSTALL = "make promtool` (or `apt-get update && apt-get install -y prometheus)"
METRIC = re.compile(r"\bhookline_[a-z_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
# Grafana's own variables, which Prometheus never sees: a rate window stands in for them here.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": "hookline"}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail(f"promtool is missing: run `{INSTALL}`, Debian's prometheus package")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def exported_names() -> set[str]:
    """Every sample name the process's /metrics can show, as Prometheus stores them."""
    metrics = Metrics()
    metrics.watch_loops(Liveness())
    names: set[str] = set()
    for family in metrics.registry.collect():
        suffixes = SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_alert_rules_pass_promtool_check_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_rule_passes_its_unit_tests() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    cases = [
        case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    for rule in rules():
        name = rule["alert"]
        assert any(c["alertname"] == name and c["exp_alerts"] for c in cases), f"nothing fires {name}"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in cases), (
            f"nothing keeps {name} quiet"
        )


def test_the_alerts_cover_what_an_operator_must_hear_of() -> None:
    expressions = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "hookline_webhooks_failing",
        "hookline_delivery_backlog_oldest_seconds",
        "hookline_projection_lag",
        "hookline_loop_stalled",
        "hookline_http_responses_total",
    ):
        assert metric in expressions, metric
    assert any("> 300" in rule["expr"] and "backlog" in rule["expr"] for rule in rules())


def test_the_rules_and_the_dashboard_name_only_metrics_hookline_exports() -> None:
    exported = exported_names()
    assert "hookline_delivery_backlog_oldest_seconds" in exported
    used = {
        name
        for text in [*(rule["expr"] for rule in rules()), *dashboard_expressions()]
        for name in METRIC.findall(text)
    }
    assert used, "no hookline_ metric named at all"
    assert used <= exported, f"not exported by hookline/metrics.py: {sorted(used - exported)}"


def test_the_dashboard_is_a_grafana_dashboard_of_deliveries_success_latency_and_backlog(
    tmp_path: Path,
) -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"]
    assert board["title"] == "Hookline"
    assert isinstance(board["schemaVersion"], int)
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "job"}
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["type"] == "timeseries", panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
    titles = {p["title"] for p in panels}
    assert {"Deliveries/s", "Success rate", "Attempt latency", "Backlog age"} <= titles

    # Each expression is valid PromQL: promtool checks it as a recording rule.
    expressions = []
    for expr in dashboard_expressions():
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        expressions.append(expr)
    recorded = [{"record": f"dashboard:panel_{i}", "expr": e} for i, e in enumerate(expressions)]
    rules_file = tmp_path / "dashboard.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    checked = promtool("check", "rules", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
