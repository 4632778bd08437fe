"""`Webhook.health` through real traffic: a real `hookline serve` (both modes) delivering to a real
receiver that answers 200, then 500; the health the read model kept, on one webhook and on a list."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.sqlite import SQLiteDatastore

from domain.deliveries import Attempt
from domain.health import HealthRecord, quantile
from store import health as store_health
from store.sql import SQLiteDatabase
from tests.conftest import MODES
from tests.support import Receiver, Server, running_server, wait_until
from tests.test_distributed import create_webhook, publish

HEALTH = "attempts failures successRate latencyP50Ms latencyP95Ms consecutiveFailures lastSuccessAt"
HEALTH_FIELDS = f"{HEALTH} lastFailureAt statusCodes {{ statusCode count }}"
WEBHOOK_HEALTH = f"query($id: ID!) {{ webhook(id: $id) {{ health {{ {HEALTH_FIELDS} }} }} }}"
LISTED_HEALTH = f"{{ webhooks(first: 50) {{ edges {{ node {{ id health {{ {HEALTH_FIELDS} }} }} }} }} }}"


def health(server: Server, key: str, webhook_id: str) -> dict[str, Any]:
    found: dict[str, Any] = server.gql(key, WEBHOOK_HEALTH, {"id": webhook_id}).ok()["webhook"]["health"]
    return found


@pytest.mark.parametrize("mode", MODES)
def test_health_counts_the_last_days_attempts_their_codes_and_the_failing_streak(
    tmp_path: Path, mode: str
) -> None:
    with (
        Receiver() as receiver,
        running_server(
            tmp_path, mode, HOOKLINE_ALLOW_PRIVATE_TARGETS="true", HOOKLINE_RETRY_SCHEDULE="600"
        ) as server,
    ):
        org = f"org-{uuid.uuid4().hex[:12]}"
        admin, publisher, viewer = (server.key(org, role) for role in ("admin", "publisher", "viewer"))
        webhook = create_webhook(server, admin, receiver.url + "/hooks")
        quiet = create_webhook(server, admin, receiver.url + "/quiet", eventTypes=["other.type"])
        assert health(server, viewer, webhook["id"]) == {
            "attempts": 0,
            "failures": 0,
            "successRate": None,
            "latencyP50Ms": None,
            "latencyP95Ms": None,
            "consecutiveFailures": 0,
            "lastSuccessAt": None,
            "lastFailureAt": None,
            "statusCodes": [],
        }

        receiver.respond = lambda _: (200, {}, "ok") if len(receiver.requests) <= 3 else (500, {}, "down")
        for seq in range(3):
            publish(server, publisher, seq)
        wait_until(lambda: health(server, viewer, webhook["id"])["attempts"] == 3, timeout=30)
        for seq in range(3, 5):
            publish(server, publisher, seq)
        found = wait_until(
            lambda: (h := health(server, viewer, webhook["id"]))["attempts"] == 5 and h, timeout=30
        )

        assert found["failures"] == 2
        assert found["successRate"] == pytest.approx(0.6)
        assert found["consecutiveFailures"] == 2
        assert found["statusCodes"] == [{"statusCode": 200, "count": 3}, {"statusCode": 500, "count": 2}]
        assert 0 < found["latencyP50Ms"] <= found["latencyP95Ms"] < 1000
        assert datetime.fromisoformat(found["lastSuccessAt"]) < datetime.fromisoformat(found["lastFailureAt"])

        listed = server.gql(viewer, LISTED_HEALTH).ok()["webhooks"]["edges"]
        by_id = {edge["node"]["id"]: edge["node"]["health"] for edge in listed}
        assert by_id[webhook["id"]] == found
        assert by_id[quiet["id"]]["attempts"] == 0

        # Another organisation's key does not see the webhook, nor its health.
        stranger = server.key(f"org-{uuid.uuid4().hex[:12]}", "admin")
        assert server.gql(stranger, WEBHOOK_HEALTH, {"id": webhook["id"]}).ok()["webhook"] is None


def attempt(at: str, status: int | None, duration_ms: float) -> Attempt:
    return Attempt(1, datetime.fromisoformat(at), duration_ms, status, None, None)


def test_only_the_last_24_hours_count_and_a_success_ends_the_streak() -> None:
    record = HealthRecord()
    record.attempted(attempt("2026-12-06T09:30:00+00:00", 200, 40))  # a day and a half before: gone
    record.attempted(attempt("2026-12-07T08:10:00+00:00", None, 15_000))  # timed out
    record.attempted(attempt("2026-12-07T20:00:00+00:00", 503, 80))
    seen = record.health(datetime.fromisoformat("2026-12-07T21:00:00+00:00"))
    assert "2026-12-06T09" not in record.hours
    assert (seen.attempts, seen.failures, seen.success_rate) == (2, 2, 0.0)
    assert seen.consecutive_failures == 2
    assert seen.status_codes == [(503, 1), (None, 1)]
    assert seen.last_success_at == datetime.fromisoformat("2026-12-06T09:30:00+00:00")  # the streak's start

    later = record.health(datetime.fromisoformat("2026-12-08T09:00:00+00:00"))  # 08h is out of the window
    assert (later.attempts, later.status_codes) == (1, [(503, 1)])
    record.attempted(attempt("2026-12-08T09:05:00+00:00", 204, 30))
    assert record.consecutive_failures == 0


def test_latency_quantiles_interpolate_inside_their_bucket() -> None:
    counts = [0] * 13
    assert quantile(counts, 0.5) is None
    counts[4] = 10  # ten attempts of 50-100 ms
    assert quantile(counts, 0.5) == pytest.approx(75.0)
    counts[12] = 10  # and ten beyond the last bound
    assert quantile(counts, 0.95) == 30_000


def test_a_read_in_the_window_of_the_last_write_takes_the_kept_summary_and_a_later_one_sums_the_hours() -> (
    None
):
    db = SQLiteDatabase(SQLiteDatastore(":memory:"), "stored_events")
    with db.transaction(commit=True) as c:
        for statement in store_health.SCHEMA:
            c.execute(statement)
    org, other_org = uuid.uuid4(), uuid.uuid4()
    webhook = uuid.uuid4()
    attempts = [
        attempt("2026-12-07T08:10:00+00:00", None, 15_000),
        attempt("2026-12-07T20:00:00+00:00", 503, 80),
        attempt("2026-12-07T20:30:00+00:00", 200, 40),
    ]
    written_at = datetime.fromisoformat("2026-12-07T21:00:00+00:00")
    batch = store_health.HealthBatch()
    for each in attempts:
        batch.attempted(webhook, org, each)
    with db.transaction(commit=True) as c:
        batch.write(c, written_at)
    record = HealthRecord()
    for each in attempts:
        record.attempted(each)

    same_window = datetime.fromisoformat("2026-12-07T21:59:00+00:00")
    later = datetime.fromisoformat("2026-12-08T09:00:00+00:00")  # 08h has left the window
    assert store_health.read_health(db, org, [webhook], same_window) == {webhook: record.health(same_window)}
    assert store_health.read_health(db, org, [webhook], later) == {webhook: record.health(later)}
    assert record.health(later) != record.health(same_window)
    assert store_health.read_health(db, other_org, [webhook], same_window) == {}  # organisations stay apart

    # Within the window the hours are not read at all: the kept summary answers.
    with db.transaction(commit=True) as c:
        c.execute("UPDATE hl_webhook_health SET record = ?", ('{"broken": true}',))
    assert store_health.read_health(db, org, [webhook], same_window) == {webhook: record.health(same_window)}
