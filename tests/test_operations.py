"""What an operator sees inside Hookline: the age of the delivery backlog on /metrics through a Redis
outage under load, and a readiness that names the background loop that stopped going round (and the
gateway's 503s counted on /metrics). Real
`hookline serve` and workers, real PostgreSQL, a Redis of the test's own, a real receiver."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from hookline.runtime import Liveness
from tests.support import (
    HOOKLINE,
    Receiver,
    RedisServer,
    Server,
    free_port,
    postgres_database,
    running_server,
    server_env,
    wait_until,
)
from tests.test_distributed import SECRET, create_webhook, event_ids, logs, publish

BACKLOG = "hookline_delivery_backlog_oldest_seconds"


def metric(server: Server, name: str, **labels: str) -> float | None:
    """The value of one sample on the server's /metrics, None when there is none."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def readiness(server: Server | str) -> tuple[int, str]:
    url = server.url if isinstance(server, Server) else server
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()
    except urllib.error.URLError as error:  # not listening yet
        return 0, str(error)


def test_a_loop_is_stalled_after_three_of_its_intervals_without_a_tick() -> None:
    now = [100.0]
    liveness = Liveness(clock=lambda: now[0])
    ticked = liveness.watch("sweeper", 5.0)
    liveness.watch("follower", 0.1)  # held to a second: a pause of half of one is no stall
    now[0] += 3.0
    assert liveness.stalled() == []
    now[0] += 0.5
    assert liveness.stalled() == ["follower has not ticked for 3.5 s (3 × its interval of 1 s)"]
    ticked()
    now[0] += 15.0
    assert liveness.is_stalled("sweeper") is False
    now[0] += 0.5
    assert [problem.split()[0] for problem in liveness.stalled()] == ["sweeper", "follower"]


def test_a_stalled_log_follower_makes_readyz_answer_503_naming_it(tmp_path: Path) -> None:
    with running_server(tmp_path, "distributed", workers=0) as server:
        publisher = server.key(f"org-{uuid.uuid4().hex[:12]}", "publisher")
        wait_until(lambda: readiness(server) == (200, "ready"), timeout=10)
        assert metric(server, "hookline_loop_stalled", loop="follower") == 0

        # The follower applies a batch under the tracking row's lock: held here, its next batch waits.
        with psycopg.connect(server.env["HOOKLINE_DATABASE_URL"]) as holder:
            holder.execute("SELECT position FROM hl_tracking FOR UPDATE")
            publish(server, publisher, 1)
            _, text = wait_until(lambda: (found := readiness(server))[0] == 503 and found, timeout=15)
            assert text.startswith("not ready: follower has not ticked for"), text
            assert "sweeper" not in text, text
            assert metric(server, "hookline_loop_stalled", loop="follower") == 1
            assert (metric(server, "hookline_http_responses_total", code="5xx") or 0) >= 1  # the 503s
            holder.rollback()

        wait_until(lambda: readiness(server) == (200, "ready"), timeout=15)
        assert metric(server, "hookline_loop_stalled", loop="follower") == 0


def test_embedded_consumers_held_in_their_jobs_make_readyz_answer_503_naming_them(tmp_path: Path) -> None:
    """Without Redis, `serve`'s own consumers deliver: when every one of them hangs in its job, /readyz
    names the `consumer` loop (idle, they tick all the same: it was ready before)."""
    with (
        postgres_database() as database,
        Receiver() as receiver,
        running_server(
            tmp_path,
            "embedded",
            HOOKLINE_DATABASE_URL=database,
            HOOKLINE_SECRET_KEY=SECRET,
            HOOKLINE_DELIVERY_CONCURRENCY="1",  # two consumers: one, and one in reserve for another org
            HOOKLINE_REQUEST_TIMEOUT_SECONDS="1",  # the consumers' interval: stalled after 3 s
            HOOKLINE_DATABASE_POOL_SIZE="4",
            HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        ) as server,
    ):
        wait_until(lambda: readiness(server) == (200, "ready"), timeout=10)
        time.sleep(3.5)  # idle all along: still ready
        assert readiness(server) == (200, "ready")
        assert metric(server, "hookline_loop_stalled", loop="consumer") == 0
        publishers = []
        for org in ("acme", "globex"):
            create_webhook(server, server.key(org, "admin"), receiver.url + "/hooks")
            publishers.append(server.key(org, "publisher"))

        # Each consumer sends one org's delivery; the receiver holds both answers while the test takes
        # a lock that keeps the events table from being written: recording the attempts, both hang.
        receiver.hold_seconds = 0.8
        with psycopg.connect(database) as holder:
            for seq, publisher in enumerate(publishers):
                publish(server, publisher, seq)
            receiver.wait_for(2, timeout=15)
            holder.execute("LOCK TABLE hookline_events IN SHARE MODE")
            _, text = wait_until(lambda: (found := readiness(server))[0] == 503 and found, timeout=15)
            assert text.startswith("not ready: consumer has not ticked for"), text
            assert "follower" not in text, text
            assert metric(server, "hookline_loop_stalled", loop="consumer") == 1
            holder.rollback()

        wait_until(lambda: readiness(server) == (200, "ready"), timeout=15)
        assert metric(server, "hookline_loop_stalled", loop="consumer") == 0


def test_the_backlog_age_rises_through_a_redis_outage_under_load_then_falls_to_zero(tmp_path: Path) -> None:
    with (
        RedisServer(tmp_path) as redis,
        Receiver() as receiver,
        running_server(
            tmp_path,
            "distributed",
            HOOKLINE_REDIS_URL=f"{redis.url}/0",
            HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        ) as server,
    ):
        try:
            admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
            create_webhook(server, admin, receiver.url + "/hooks")
            assert metric(server, BACKLOG) == 0

            published: list[str] = []
            stop = threading.Event()

            def load() -> None:  # about 20 events a second, until told to stop
                while not stop.is_set():
                    published.append(publish(server, publisher, len(published), prefix="load"))
                    time.sleep(0.05)

            with ThreadPoolExecutor(1) as background:
                loading = background.submit(load)
                wait_until(lambda: len(receiver.requests) >= 20, timeout=30)  # flowing
                redis.stop()
                ages = []
                outage_ends = time.monotonic() + 5
                while time.monotonic() < outage_ends:
                    ages.append(metric(server, BACKLOG) or 0.0)
                    time.sleep(0.25)
                redis.start()
                time.sleep(3)
                stop.set()
                loading.result(timeout=30)

            assert max(ages) >= 3.0, f"the backlog's age during the outage: {ages}"
            wait_until(lambda: event_ids(receiver.requests) >= set(published), timeout=60, interval=0.5)
            wait_until(lambda: metric(server, BACKLOG) == 0, timeout=30, interval=0.5)
            assert len(published) > 100, len(published)
        except BaseException:
            print(logs(tmp_path))
            raise


def test_a_workers_readyz_names_its_claim_loop_while_redis_is_away(tmp_path: Path) -> None:
    port = free_port()
    with postgres_database() as database, RedisServer(tmp_path) as redis:
        env = server_env(
            HOOKLINE_DATABASE_URL=database, HOOKLINE_REDIS_URL=f"{redis.url}/0", HOOKLINE_SECRET_KEY=SECRET
        )
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [HOOKLINE, "worker", "--readiness-port", str(port)],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: readiness(url) == (200, "ready") if worker.poll() is None else 1 / 0, 60)
            redis.stop()  # arq's poll fails, and the worker waits to start again: its claims stop
            _, text = wait_until(lambda: (found := readiness(url))[0] == 503 and found, timeout=15)
            assert text.startswith("not ready: claimer has not ticked for"), text
            redis.start()
            wait_until(lambda: readiness(url) == (200, "ready"), timeout=30)
            assert worker.poll() is None
        except BaseException:
            print((tmp_path / "worker.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            worker.terminate()
            worker.wait(30)
