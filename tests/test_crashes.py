"""Crashes and a store that cannot be written: nothing acknowledged is lost, nothing refused is stored.

- `kill -9` of an embedded `serve` in the middle of 500 deliveries: after a restart every event arrives
  and every delivery ends SUCCEEDED (duplicates are allowed, at least once, and reported).
- A store that cannot be written (an immutable file, a full disk): publishing answers with a clear
  error, never an event id; once the store can be written again, nothing refused turns up and work
  that failed to be recorded is taken up again.
- Workers down while an admin replays an event that is not fanned out yet: when a worker is back,
  every webhook of the event still gets its delivery.

We run as root here, where file modes do not stop a writer: an immutable file (`chattr +i`) stands
for a read-only store, and a tiny tmpfs filled to the last byte for a full disk. Tests skip when the
machine allows neither.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.queries import CREATE_WEBHOOK, DELIVERIES, webhook_input
from tests.support import GraphQLResult, Received, Receiver, Server, distributed_env, server_env, wait_until

EVENTS = 500
BATCH = 50
KILL_AFTER = 100
PUBLISH_MANY = (
    "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId duplicate } }"
)
PUBLISH = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }"
LEAKS = ("/tmp", "/work", "/var", "sqlite", ".py", "SELECT", "INSERT", "Traceback", "OperationalError")


def admin_and_publisher(server: Server) -> tuple[str, str]:
    org = f"crash-{uuid.uuid4().hex[:10]}"
    return server.key(org, "admin"), server.key(org, "publisher")


def event_id_of(received: Received) -> str:
    return str(json.loads(received.body)["id"])


def all_deliveries(server: Server, admin: str, webhook_id: str) -> list[dict[str, Any]]:
    page = server.gql(admin, DELIVERIES, {"webhookId": webhook_id, "first": 500}).ok()["deliveries"]
    return [edge["node"] for edge in page["edges"]]


# -- kill -9 in the middle of 500 deliveries ---------------------------------------------------------


def test_kill_9_in_the_middle_of_500_deliveries_loses_none_of_them(
    embedded_server: Server, receiver: Receiver, record_property: Any
) -> None:
    server = embedded_server
    admin, publisher = admin_and_publisher(server)
    webhook = server.gql(
        admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url + "/crash", eventTypes=["crash.event"])}
    ).ok()["createWebhook"]["id"]

    def slowly(_: Received) -> tuple[int, dict[str, str], str]:
        time.sleep(0.004)  # the receiver takes one request at a time: ~250 a second at most
        return 200, {}, "ok"

    receiver.respond = slowly
    run = uuid.uuid4().hex
    acknowledged: dict[str, str] = {}  # idempotency key -> event id, once the gateway said so

    def publish_all() -> None:
        """Publishes in batches; a batch cut off by the crash is sent again (same keys) until taken."""
        for start in range(0, EVENTS, BATCH):
            batch = [
                {"type": "crash.event", "payload": {"n": n}, "idempotencyKey": f"{run}-{n}"}
                for n in range(start, start + BATCH)
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    result = server.gql(publisher, PUBLISH_MANY, {"input": batch})
                except OSError:
                    time.sleep(0.2)  # the gateway is down: try again
                    continue
                for event, published in zip(batch, result.ok()["publishEvents"], strict=True):
                    acknowledged[str(event["idempotencyKey"])] = published["eventId"]
                break
            time.sleep(0.05)

    publishing = threading.Thread(target=publish_all, daemon=True)
    publishing.start()
    receiver.wait_for(KILL_AFTER, timeout=60)
    assert server.process is not None
    server.process.kill()  # SIGKILL: no shutdown, no drain, no flush
    server.process.wait(10)
    arrived_before_restart = len(receiver.requests)
    acknowledged_before_restart = len(acknowledged)
    server.start()
    publishing.join(90)
    assert not publishing.is_alive()
    assert len(acknowledged) == EVENTS

    expected = set(acknowledged.values())
    wait_until(lambda: expected <= {event_id_of(r) for r in receiver.requests}, timeout=90, interval=0.2)

    def all_succeeded() -> list[dict[str, Any]] | None:
        found = all_deliveries(server, admin, webhook)
        done = len(found) == EVENTS and all(d["status"] == "SUCCEEDED" for d in found)
        return found if done else None

    deliveries = wait_until(all_succeeded, timeout=60, interval=0.5)
    assert {d["eventId"] for d in deliveries} == expected
    arrivals = collections.Counter(event_id_of(r) for r in receiver.requests)
    assert set(arrivals) == expected, "something arrived that was never acknowledged"
    duplicates = sum(count - 1 for count in arrivals.values())
    # A repeat is the same delivery: the same webhook-id on every copy.
    ids_per_event: dict[str, set[str]] = collections.defaultdict(set)
    for r in receiver.requests:
        ids_per_event[event_id_of(r)].add(r.headers["webhook-id"])
    assert all(len(ids) == 1 for ids in ids_per_event.values())
    record_property("arrived before the restart", arrived_before_restart)
    record_property("acknowledged before the restart", acknowledged_before_restart)
    record_property("duplicates", duplicates)
    print(
        f"kill -9 after {arrived_before_restart} arrivals, "
        f"{acknowledged_before_restart} events acknowledged; in all {EVENTS} events, "
        f"{len(receiver.requests)} requests, {duplicates} duplicates"
    )
    assert duplicates < EVENTS  # at least once, not everything twice


# -- a store that cannot be written ------------------------------------------------------------------


def store_files(server: Server) -> list[Path]:
    """The SQLite file, its write-ahead log and their directory (so that no new file appears there);
    not the shared-memory index: sqlite maps it, and a mapping of an immutable file kills the process
    with SIGBUS rather than failing a write."""
    var = server.directory / "var"
    return [var, var / "hookline.sqlite3", var / "hookline.sqlite3-wal"]


@contextlib.contextmanager
def immutable(paths: list[Path]) -> Iterator[None]:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available")
    existing = [str(p) for p in paths if p.exists()]
    done = subprocess.run(["chattr", "+i", *existing], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *existing], check=True)


def assert_clear_refusal(result: GraphQLResult) -> None:
    """An error, no event id; a message that says the store could not take it, and nothing more."""
    assert (result.data or {}).get("publishEvent") is None, result
    assert result.errors, result
    text = json.dumps(result)
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} in {text}"
    message = result.errors[0]["message"].lower()
    assert any(word in message for word in ("store", "storage", "disk", "space", "read-only", "readonly")), (
        f"not a clear error: {result.errors[0]['message']!r} ({result.codes})"
    )


def assert_not_stored_and_publishing_works_again(server: Server, publisher: str, key: str) -> None:
    def republished() -> GraphQLResult | None:
        result = server.gql(
            publisher, PUBLISH, {"input": {"type": "store.test", "payload": {}, "idempotencyKey": key}}
        )
        return result if not result.errors else None

    again = wait_until(republished, timeout=10, interval=0.5)
    assert again.data["publishEvent"]["duplicate"] is False, "the refused event had been stored"


def test_publishing_to_a_store_that_cannot_be_written_is_a_clear_error_and_stores_nothing(
    embedded_server: Server,
) -> None:
    admin, publisher = admin_and_publisher(embedded_server)
    embedded_server.gql(
        publisher, PUBLISH, {"input": {"type": "store.test", "payload": {"before": True}}}
    ).ok()
    key = uuid.uuid4().hex

    with immutable(store_files(embedded_server)):
        result = embedded_server.gql(
            publisher, PUBLISH, {"input": {"type": "store.test", "payload": {"n": 1}, "idempotencyKey": key}}
        )
        readable = embedded_server.gql(admin, "{ webhooks { totalCount } }")

    assert readable.ok()["webhooks"]["totalCount"] == 0  # reading goes on
    try:
        assert_clear_refusal(result)
    finally:
        assert_not_stored_and_publishing_works_again(embedded_server, publisher, key)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own (needs CAP_SYS_ADMIN; root in this sandbox)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def test_publishing_on_a_full_disk_is_a_clear_error_and_stores_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    server = Server(
        directory=tmp_path,
        env=server_env(HOOKLINE_DATABASE_URL=f"sqlite:///{small_disk}/hookline.sqlite3"),
    )
    try:
        server.start()
        _, publisher = admin_and_publisher(server)
        server.gql(publisher, PUBLISH, {"input": {"type": "store.test", "payload": {"before": True}}}).ok()
        filler = fill(small_disk)
        key = uuid.uuid4().hex
        # Larger than any room the write-ahead log may have kept from before.
        payload = {"blob": secrets.token_hex(100 * 1024)}

        result = server.gql(
            publisher, PUBLISH, {"input": {"type": "store.test", "payload": payload, "idempotencyKey": key}}
        )

        filler.unlink()
        try:
            assert_clear_refusal(result)
        finally:
            assert_not_stored_and_publishing_works_again(server, publisher, key)
    finally:
        server.stop()


def test_a_delivery_whose_outcome_could_not_be_recorded_is_finished_once_the_store_is_writable(
    embedded_server: Server, receiver: Receiver
) -> None:
    """The target answers while the store is read-only: the attempt cannot be recorded. Once the store
    can be written again the delivery must not stay PENDING until someone restarts the server."""
    admin, publisher = admin_and_publisher(embedded_server)
    webhook = embedded_server.gql(
        admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url + "/slow", eventTypes=["store.slow"])}
    ).ok()["createWebhook"]["id"]
    answer = threading.Event()

    def when_told(_: Received) -> tuple[int, dict[str, str], str]:
        answer.wait(10)
        return 200, {}, "ok"

    receiver.respond = when_told
    embedded_server.gql(publisher, PUBLISH, {"input": {"type": "store.slow", "payload": {"n": 1}}}).ok()
    receiver.wait_for(1)
    log_size = len(embedded_server.output())

    with immutable(store_files(embedded_server)):
        answer.set()  # the target answers now; recording the attempt fails
        wait_until(lambda: '"event": "job failed' in embedded_server.output()[log_size:], timeout=10)
        time.sleep(0.5)

    def finished() -> bool:
        found = all_deliveries(embedded_server, admin, webhook)
        return bool(found) and found[0]["status"] == "SUCCEEDED"

    try:
        wait_until(finished, timeout=15, interval=0.5)
    except AssertionError:
        status = all_deliveries(embedded_server, admin, webhook)[0]["status"]
        raise AssertionError(
            f"the delivery is still {status} 15 s after the store could be written again "
            f"({len(receiver.requests)} request(s) arrived)"
        ) from None


# -- an outage of the workers while an admin replays -------------------------------------------------

REPLAY = 'mutation($id: ID!) { replayEvents(webhookId: $id, from: "2000-01-01T00:00:00+00:00") }'


def test_a_replay_while_no_worker_runs_takes_no_delivery_from_another_webhook(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Distributed, with every worker down: an event is recorded but not yet fanned out, and an admin
    replays it to one of its two webhooks. When a worker comes back, the other webhook must still get
    its delivery (the replay's delivery must not make the fan-out look done)."""
    with distributed_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true") as environment:
        server = Server(directory=tmp_path, env=environment, workers=0)
        try:
            server.start()
            admin, publisher = admin_and_publisher(server)
            webhooks = {
                name: server.gql(
                    admin,
                    CREATE_WEBHOOK,
                    {"input": webhook_input(f"{receiver.url}/{name}", eventTypes=["outage.event"])},
                ).ok()["createWebhook"]["id"]
                for name in ("replayed", "other")
            }
            server.gql(publisher, PUBLISH, {"input": {"type": "outage.event", "payload": {}}}).ok()
            assert server.gql(admin, REPLAY, {"id": webhooks["replayed"]}).ok()["replayEvents"] == 1

            server.workers = 1
            server.start_worker()
            server.wait_for_workers()

            def delivered(name: str) -> bool:
                found = all_deliveries(server, admin, webhooks[name])
                return bool(found) and found[0]["status"] == "SUCCEEDED"

            wait_until(lambda: delivered("replayed"), timeout=20)
            try:
                wait_until(lambda: delivered("other"), timeout=10)
            except AssertionError:
                paths = sorted(r.path for r in receiver.requests)
                raise AssertionError(
                    f"the other webhook has {all_deliveries(server, admin, webhooks['other'])} "
                    f"10 s after the replayed one was delivered; the target saw {paths}"
                ) from None
        finally:
            server.stop()
