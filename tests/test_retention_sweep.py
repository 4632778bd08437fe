"""The retention sweep through a real `hookline serve` (SQLite embedded; PostgreSQL, Redis and workers
distributed), sweeping every second: deliveries past an organisation's `deliveries` window go with
their events and audit records, a RETRYING one older than the window stays, another organisation's
are untouched, and the audit chain still verifies, in the store and offline, with signed checkpoints
where records were removed; an export with a line removed around such a checkpoint is refused."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import MODES
from tests.queries import DELIVERIES, DELIVERY
from tests.support import Receiver, Server, running_server, wait_until
from tests.test_audit_chain_v2 import public_key
from tests.test_audit_checkpoints import export, verify, write
from tests.test_audit_plane import audit_log, create_webhook, publish
from tests.test_audit_plane import verify as verify_in_store
from tests.test_operations import metric, readiness
from tests.test_retention_policy import set_policy


@pytest.fixture(params=MODES)
def sweeping_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with running_server(
        tmp_path,
        request.param,
        HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        HOOKLINE_RETENTION_SWEEP_SECONDS="1",
        HOOKLINE_RETRY_SCHEDULE="3600",  # a failed first attempt is RETRYING for an hour
    ) as server:
        yield server


def deliveries(server: Server, key: str, status: str | None = None) -> list[dict[str, Any]]:
    found = server.gql(key, DELIVERIES, {"status": status, "first": 100}).ok()["deliveries"]
    return [edge["node"] for edge in found["edges"]]


def delivery(server: Server, key: str, delivery_id: str) -> Any:
    return server.gql(key, DELIVERY, {"id": delivery_id}).ok()["delivery"]


def test_old_deliveries_go_with_their_events_and_the_chain_still_verifies(
    sweeping_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    server = sweeping_server
    receiver.respond = lambda r: (500, {}, "down") if r.path == "/down" else (200, {}, "ok")
    swept, neighbour = "retention-swept", "retention-neighbour"
    admin, publisher = server.key(swept, "admin"), server.key(swept, "publisher")
    other_admin, other_publisher = server.key(neighbour, "admin"), server.key(neighbour, "publisher")
    create_webhook(server, admin, receiver.url + "/ok")
    create_webhook(server, admin, receiver.url + "/down", eventTypes=["alert.sent"])
    create_webhook(server, other_admin, receiver.url + "/neighbour")
    events = [publish(server, publisher, number=n) for n in range(3)]
    retrying_event = publish(server, publisher, "alert.sent", number=99)
    others = [publish(server, other_publisher, number=n) for n in range(2)]
    wait_until(lambda: len(deliveries(server, admin, "SUCCEEDED")) == 3, 20)
    wait_until(lambda: len(deliveries(server, admin, "RETRYING")) == 1, 20)
    wait_until(lambda: len(deliveries(server, other_admin, "SUCCEEDED")) == 2, 20)
    removed = deliveries(server, admin, "SUCCEEDED")
    retrying = deliveries(server, admin, "RETRYING")[0]
    key = public_key(server)
    before = export(server, tmp_path / "before.jsonl")
    assert verify(server, tmp_path / "before.jsonl", key).returncode == 0
    assert verify_in_store(server, admin)["valid"]

    set_policy(server, admin, "PT2S", "PT6S").ok()
    wait_until(lambda: not deliveries(server, admin, "SUCCEEDED"), 30)
    later = publish(server, publisher, number=100)  # the chain goes on after what was removed
    wait_until(lambda: len(deliveries(server, admin, "SUCCEEDED")) == 1, 20)
    # Past `payloads` (2 s) and before `deliveries` (6 s): erased, in the audit log too.
    erased = wait_until(
        lambda: [r for r in audit_log(server, admin, later) if r["erased"]] or None, timeout=20, interval=0.2
    )
    assert erased[0]["data"] is None
    assert verify_in_store(server, admin)["valid"]
    assert not [r for r in audit_log(server, admin, retrying_event) if r["erased"]], "RETRYING: kept"

    for gone in removed:
        assert delivery(server, admin, gone["id"]) is None
    assert delivery(server, admin, retrying["id"])["status"] == "RETRYING", "RETRYING is never removed"
    assert [d["eventId"] for d in deliveries(server, admin, "RETRYING")] == [retrying_event]
    assert len(deliveries(server, other_admin, "SUCCEEDED")) == 2, "no policy: nothing removed"
    trail = {record["aggregateId"] for record in audit_log(server, admin)}
    assert not trail & {*events, *(d["id"] for d in removed)}, "their audit records are gone"
    assert retrying_event in trail
    assert retrying["id"] in trail
    assert {*others} <= {record["aggregateId"] for record in audit_log(server, other_admin)}
    assert verify_in_store(server, admin)["valid"], verify_in_store(server, admin)
    assert verify_in_store(server, other_admin)["valid"]

    path = tmp_path / "after.jsonl"
    after = export(server, path)
    checked = verify(server, path, key)
    assert checked.returncode == 0, checked.stderr
    gone_ids = {*events, *(d["id"] for d in removed)}
    assert any(line.get("aggregateId") in gone_ids for line in before)
    assert not any(line.get("aggregateId") in gone_ids for line in after)
    swept_org = next(r["organizationId"] for r in after if r.get("aggregateId") == retrying_event)
    pairs = [
        number
        for number, (line, following) in enumerate(itertools.pairwise(after), start=1)
        if "checkpoint" in line
        and "checkpoint" in following
        and line["checkpoint"]["organizationId"] == swept_org == following["checkpoint"]["organizationId"]
        and following["checkpoint"]["position"] > line["checkpoint"]["position"]
    ]
    assert pairs, "the removed run is replaced by two checkpoints: the last kept record, the run's end"
    first = pairs[0]

    without_kept = write(tmp_path / "no-kept.jsonl", after[: first - 1] + after[first:])
    refused = verify(server, without_kept, key)
    assert refused.returncode == 1, refused.stderr
    assert f"line {first}:" in refused.stderr, refused.stderr
    without_run = write(tmp_path / "no-run.jsonl", after[:first] + after[first + 1 :])
    refused = verify(server, without_run, key)
    assert refused.returncode == 1, refused.stderr
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == after


def test_a_hung_retention_sweep_makes_readyz_answer_503_naming_it(tmp_path: Path) -> None:
    with running_server(tmp_path, "distributed", workers=0, HOOKLINE_RETENTION_SWEEP_SECONDS="1") as server:
        wait_until(lambda: readiness(server) == (200, "ready"), timeout=10)
        server.key("retention-hung", "admin")  # an organisation with a trail for the sweep to read
        # The sweep starts by reading which organisations there are: held here, it hangs on it.
        with psycopg.connect(server.env["HOOKLINE_DATABASE_URL"]) as holder:
            holder.execute("LOCK TABLE hl_audit_heads IN ACCESS EXCLUSIVE MODE")
            _, text = wait_until(lambda: (found := readiness(server))[0] == 503 and found, timeout=15)
            assert text.startswith("not ready: retention has not ticked for"), text
            assert metric(server, "hookline_loop_stalled", loop="retention") == 1
            holder.rollback()

        wait_until(lambda: readiness(server) == (200, "ready"), timeout=15)
        assert metric(server, "hookline_loop_stalled", loop="retention") == 0
