"""A template cannot take `serve` down: too many placeholders are refused on save, and a body that
renders past HOOKLINE_MAX_RENDERED_BYTES fails its delivery (or test) at once, with memory bounded,
while every other webhook keeps receiving. Through the real gateway and a real receiver."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, UPDATE_WEBHOOK, webhook_input
from tests.support import GraphQLResult, Receiver, Server, wait_until

DEFAULT_LIMIT = 4 * 1024 * 1024
TOO_LARGE = f"the rendered body is larger than HOOKLINE_MAX_RENDERED_BYTES ({DEFAULT_LIMIT} bytes)"
MAX_PLACEHOLDERS = 1000
EVENT_TYPE = "attack.amplified"  # not defined: any variable goes
SEND_TEST = """
mutation($webhookId: ID!) {
  sendTest(webhookId: $webhookId, useSampleData: true) {
    success statusCode durationMs responseBody errors requestBody
  }
}
"""
DEFINE_EVENT_TYPE = "mutation($input: DefineEventTypeInput!) { defineEventType(input: $input) { name } }"


def problems(result: GraphQLResult) -> list[tuple[str, str]]:
    return [(f["field"], f["message"]) for e in result.errors for f in e["extensions"].get("fields", [])]


def create(server: Server, key: str, target: str, **overrides: object) -> dict[str, Any]:
    created = server.gql(key, CREATE_WEBHOOK, {"input": webhook_input(target, **overrides)}).ok()
    webhook: dict[str, Any] = created["createWebhook"]
    return webhook


def deliveries_of(server: Server, key: str, webhook_id: str) -> list[dict[str, Any]]:
    page = server.gql(key, DELIVERIES, {"webhookId": webhook_id}).ok()["deliveries"]
    return [edge["node"] for edge in page["edges"]]


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak since the last reset) of a process, in KiB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {
        k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if k in ("VmRSS", "VmHWM")
    }


def renderers(server: Server) -> list[int]:
    """The processes that render deliveries: `serve` (embedded) and its workers (distributed)."""
    assert server.process is not None
    return [server.process.pid, *(worker.pid for worker in server.worker_processes)]


def healthy(server: Server) -> bool:
    assert server.process is not None
    assert server.process.poll() is None, "serve exited"
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:
        return bool(response.status == 200)


def test_a_template_of_30000_placeholders_is_refused_on_save_naming_the_limit_and_the_count(
    open_server: Server, org: str
) -> None:
    admin = open_server.key(org, "admin")
    attack = json.dumps({"text": "#x" * 30_000})  # 60 KiB: within the template size limit
    assert len(attack) < 64 * 1024

    created = open_server.gql(
        admin,
        CREATE_WEBHOOK,
        {"input": webhook_input("https://example.com/hook", eventTypes=[EVENT_TYPE], payloadTemplate=attack)},
    )
    assert created.codes == ["BAD_USER_INPUT"], created.errors
    assert problems(created) == [
        ("payloadTemplate", f"has 30000 placeholders; at most {MAX_PLACEHOLDERS} are allowed")
    ]

    webhook = create(open_server, admin, "https://example.com/hook", eventTypes=[EVENT_TYPE])
    updated = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": webhook["id"], "input": {"payloadTemplate": attack}}
    )
    assert updated.codes == ["BAD_USER_INPUT"], updated.errors
    assert [field for field, _ in problems(updated)] == ["payloadTemplate"]
    # At the limit is still a template.
    at_limit = json.dumps({"text": "#x" * MAX_PLACEHOLDERS})
    open_server.gql(admin, UPDATE_WEBHOOK, {"id": webhook["id"], "input": {"payloadTemplate": at_limit}}).ok()


def test_a_template_rendering_past_the_limit_fails_its_delivery_at_once_and_other_webhooks_still_receive(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    admin = open_server.key(org, "admin")
    # 1 000 placeholders (allowed) of a 100 KB value: a 100 MB body, 25 times the limit.
    amplifier = create(
        open_server,
        admin,
        receiver.url + "/amplified",
        eventTypes=[EVENT_TYPE],
        payloadTemplate=json.dumps({"text": "{{blob}}" * MAX_PLACEHOLDERS}),
    )
    plain = create(open_server, admin, receiver.url + "/plain", eventTypes=[EVENT_TYPE])
    create(open_server, admin, receiver.url + "/alerts", eventTypes=["hookline.delivery.failed"])
    pids = renderers(open_server)
    for pid in pids:  # restarts each process's peak (VmHWM) from its resident size now
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = {pid: memory_kib(pid) for pid in pids}

    marker = uuid.uuid4().hex
    open_server.gql(
        admin, PUBLISH, {"input": {"type": EVENT_TYPE, "payload": {"blob": "a" * 100_000, "marker": marker}}}
    ).ok()

    (received,) = wait_until(lambda: [r for r in list(receiver.requests) if r.path == "/plain"])
    assert json.loads(received.body)["data"]["marker"] == marker
    failed = wait_until(
        lambda: next(
            (d for d in deliveries_of(open_server, admin, amplifier["id"]) if d["status"] == "FAILED"), None
        )
    )
    assert [(a["number"], a["statusCode"], a["error"]) for a in failed["attempts"]] == [(1, None, TOO_LARGE)]
    assert failed["nextAttemptAt"] is None
    (sent,) = deliveries_of(open_server, admin, plain["id"])
    assert sent["status"] == "SUCCEEDED"

    time.sleep(1.0)  # no retry follows: still one attempt, and nothing reached the target
    (again,) = deliveries_of(open_server, admin, amplifier["id"])
    assert (again["status"], len(again["attempts"])) == ("FAILED", 1)
    (alerted,) = wait_until(lambda: [r for r in list(receiver.requests) if r.path == "/alerts"])
    assert sorted(r.path for r in receiver.requests) == ["/alerts", "/plain"]
    alert = json.loads(alerted.body)["data"]
    assert (alert["delivery_id"], alert["attempts"], alert["last_error"]) == (failed["id"], 1, TOO_LARGE)
    assert healthy(open_server)
    after = {pid: memory_kib(pid) for pid in pids}
    growth_mib = {pid: (after[pid]["VmHWM"] - before[pid]["VmRSS"]) / 1024 for pid in pids}
    print(f"\n{open_server.mode}: KiB before {before}, after {after}; peak growth MiB {growth_mib}")
    assert max(growth_mib.values()) < 50, growth_mib


def test_send_test_with_sample_data_rendering_past_the_limit_answers_the_error_and_sends_nothing(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    admin = open_server.key(org, "admin")
    sample = {"blob": "b" * 60_000}  # within a sample's 64 KiB
    open_server.gql(
        admin, DEFINE_EVENT_TYPE, {"input": {"name": "attack.sampled", "samplePayload": sample}}
    ).ok()
    webhook = create(
        open_server,
        admin,
        receiver.url,
        eventTypes=["attack.sampled"],
        payloadTemplate=json.dumps({"text": "#blob" * MAX_PLACEHOLDERS}),  # a 60 MB body
    )

    result = open_server.gql(admin, SEND_TEST, {"webhookId": webhook["id"]}).ok()["sendTest"]

    assert result == {
        "success": False,
        "statusCode": None,
        "durationMs": None,
        "responseBody": None,
        "errors": [TOO_LARGE],
        "requestBody": None,
    }
    time.sleep(0.3)
    assert receiver.requests == []
    assert healthy(open_server)
