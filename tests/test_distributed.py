"""Distributed mode under faults: real PostgreSQL, real Redis, real `hookline serve` and `hookline worker`
processes, real receivers. Workers are killed, stopped and started late, Redis goes away and comes back,
a rate limit is shared by three workers, and docker-compose.yml's commands run as they are written."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import yaml  # type: ignore[import-untyped]
from aiohttp import web
from arq import create_pool
from arq.connections import RedisSettings

from domain.deliveries import due_key
from tests.queries import CREATE_WEBHOOK, DELIVERIES, DELIVERY, PUBLISH, webhook_input
from tests.support import (
    HOOKLINE,
    Received,
    Receiver,
    Server,
    distributed_env,
    free_port,
    postgres_database,
    redis_database,
    server_env,
    wait_until,
)
from workers.arq_queue import DELIVER, deliver_job_id

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-passphrase-for-the-distributed-store"
JOB_RERUN_SECONDS = 60 + 10  # arq's job timeout, then its in-progress key's extra: a killed job runs again


# -- helpers ------------------------------------------------------------------------------------------


class SlowReceiver(Receiver):
    """A receiver that answers each request after `delay` seconds; `started` counts requests as they
    arrive (before the delay), `requests` holds them once answered."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.started: list[float] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.started.append(time.monotonic())
        await asyncio.sleep(self.delay)
        return await super()._handle(request)


@contextmanager
def distributed(directory: Path, workers: int, **env: str) -> Iterator[Server]:
    """`serve` and `workers` workers on a PostgreSQL database and a Redis db index of their own."""
    with distributed_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true", **env) as environment:
        server = Server(directory=directory, env=environment, workers=workers)
        try:
            yield server.start()
        finally:
            server.stop()


def logs(directory: Path) -> str:
    """The tails of every process log under a server's directory, for failure messages."""
    parts = []
    for path in sorted(directory.rglob("*.log")):
        text = path.read_text(errors="replace")
        parts.append(f"--- {path.relative_to(directory)} (last 3000 chars)\n{text[-3000:]}")
    return "\n".join(parts)


def create_webhook(server: Server, admin: str, target: str, **overrides: object) -> dict[str, Any]:
    created: dict[str, Any] = server.gql(
        admin, CREATE_WEBHOOK, {"input": webhook_input(target, **overrides)}
    ).ok()["createWebhook"]
    return created


def publish(server: Server, publisher: str, seq: int, prefix: str = "e") -> str:
    published = server.gql(
        publisher,
        PUBLISH,
        {"input": {"type": "alert.activated", "payload": {"seq": seq}, "idempotencyKey": f"{prefix}-{seq}"}},
    ).ok()["publishEvent"]
    assert published["duplicate"] is False
    event_id: str = published["eventId"]
    return event_id


def publish_many(server: Server, publisher: str, count: int, prefix: str = "e") -> list[str]:
    """`count` separate publishEvent calls from 8 threads; the event ids in seq order."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda seq: publish(server, publisher, seq, prefix), range(count)))


def event_ids(requests: list[Received]) -> set[str]:
    return {json.loads(r.body)["id"] for r in requests}


def delivery_ids(requests: list[Received]) -> list[str]:
    return [r.headers["webhook-id"] for r in requests]


def duplicates(requests: list[Received]) -> dict[str, int]:
    return {k: n for k, n in Counter(delivery_ids(requests)).items() if n > 1}


def all_deliveries(server: Server, key: str, webhook_id: str) -> tuple[int, list[dict[str, Any]]]:
    """Every delivery of a webhook, paged 500 at a time; with the totalCount of the first page."""
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    total = -1
    for _ in range(50):
        page = server.gql(key, DELIVERIES, {"webhookId": webhook_id, "first": 500, "after": after}).ok()[
            "deliveries"
        ]
        total = page["totalCount"] if total < 0 else total
        nodes.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    return total, nodes


def all_succeeded(server: Server, key: str, webhook_id: str, count: int) -> list[dict[str, Any]] | None:
    total, nodes = all_deliveries(server, key, webhook_id)
    if total == count and len(nodes) == count and all(n["status"] == "SUCCEEDED" for n in nodes):
        return nodes
    return None


def status_count(nodes: list[dict[str, Any]]) -> Counter[str]:
    return Counter(n["status"] for n in nodes)


def readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def max_in_any_second(times: list[float]) -> int:
    ordered = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


# -- 1. kill -9 of a worker mid-run ------------------------------------------------------------------


def test_killing_a_worker_mid_run_loses_no_delivery_and_records_each_success_once(tmp_path: Path) -> None:
    count = 600
    receiver = SlowReceiver(0.02)
    with distributed(tmp_path, workers=2) as server, receiver:
        admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
        webhook = create_webhook(server, admin, receiver.url + "/hooks")

        with ThreadPoolExecutor(1) as background:
            publishing = background.submit(publish_many, server, publisher, count)
            receiver.wait_for(150, timeout=60)
            victim = server.worker_processes[0]
            victim.kill()  # SIGKILL: no drain, no cleanup, its in-progress jobs stay claimed in Redis
            assert victim.wait(10) == -signal.SIGKILL
            killed, killed_at = time.monotonic(), len(receiver.requests)
            published = publishing.result(timeout=120)
        assert len(set(published)) == count
        assert killed_at < count, "every delivery arrived before the kill: the test proved nothing"

        # The killed worker's claimed jobs (sent or not, recorded or not) run again once arq's in-progress
        # key expires; until then their deliveries may have arrived and still be PENDING in the store.
        deadline = killed + JOB_RERUN_SECONDS + 45
        wait_until(
            lambda: event_ids(receiver.requests) >= set(published),
            timeout=deadline - time.monotonic(),
            interval=0.5,
        )
        nodes = wait_until(
            lambda: all_succeeded(server, admin, webhook["id"], count),
            timeout=max(deadline - time.monotonic(), 10),
            interval=2,
        )
        time.sleep(1)  # a late duplicate send would arrive now

        requests = list(receiver.requests)
        assert event_ids(requests) == set(published)
        repeated = duplicates(requests)
        extra = len(requests) - len(set(delivery_ids(requests)))
        assert extra < count * 0.05, (
            f"{extra} duplicate sends ({len(repeated)} deliveries sent more than once) out of {count}; "
            f"{killed_at} had arrived when worker 0 was killed\n{logs(tmp_path)}"
        )
        assert {n["id"] for n in nodes} == set(delivery_ids(requests))
        assert {n["eventId"] for n in nodes} == set(published)
        for node in nodes:
            ok = [a for a in node["attempts"] if a["statusCode"] is not None and 200 <= a["statusCode"] < 300]
            assert len(ok) == 1, node
        assert server.worker_processes[1].poll() is None, "the surviving worker exited"


# -- 2. Redis goes away and comes back --------------------------------------------------------------


@contextmanager
def own_redis(port: int, directory: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A redis-server of the test's own on `port`; the list holds the running process (replaceable)."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(start_redis(port, directory))
        yield processes
    finally:
        for process in processes:
            stop_redis(process)


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    with (directory / "redis.log").open("ab") as sink:
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    wait_until(lambda: redis_answers(port, process), timeout=10)
    return process


def redis_answers(port: int, process: subprocess.Popen[bytes]) -> bool:
    import redis

    if process.poll() is not None:
        raise AssertionError(f"redis-server on port {port} exited with {process.returncode}")
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_a_redis_outage_loses_nothing_published_meanwhile_and_sends_nothing_twice(tmp_path: Path) -> None:
    port = free_port()
    with postgres_database() as database, own_redis(port, tmp_path) as redis_processes:
        env = server_env(
            HOOKLINE_DATABASE_URL=database,
            HOOKLINE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
            HOOKLINE_SECRET_KEY=SECRET,
            HOOKLINE_SWEEP_SECONDS="1",
            HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        )
        server = Server(directory=tmp_path, env=env, workers=2)
        try:
            server.start()
            with Receiver() as receiver:
                admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
                webhook = create_webhook(server, admin, receiver.url + "/hooks")
                assert readyz(server.url) == 200
                warm_up = publish(server, publisher, 0, prefix="before")
                receiver.wait_for(1, timeout=30)  # the workers are up and delivering

                stop_redis(redis_processes.pop())
                wait_until(lambda: readyz(server.url) == 503, timeout=10)
                published = publish_many(server, publisher, 50, prefix="during")
                time.sleep(2)  # the workers and the sweeper meet the outage for a while
                assert readyz(server.url) == 503
                assert len(receiver.requests) == 1

                redis_processes.append(start_redis(port, tmp_path))
                wait_until(lambda: readyz(server.url) == 200, timeout=15)

                def all_arrived() -> bool:
                    exited = {
                        i: w.returncode for i, w in enumerate(server.worker_processes) if w.poll() is not None
                    }
                    assert not exited, (
                        f"workers exited (index: code) {exited} during the Redis outage; "
                        f"{len(receiver.requests) - 1} of 50 events arrived\n{logs(tmp_path)}"
                    )
                    return event_ids(receiver.requests) >= {warm_up, *published}

                wait_until(all_arrived, timeout=45, interval=0.2)
                wait_until(lambda: all_succeeded(server, admin, webhook["id"], 51), timeout=20, interval=0.5)
                time.sleep(2)  # two more sweeps: nothing is queued again, nothing sent twice
                assert duplicates(receiver.requests) == {}
                assert len(receiver.requests) == 51
                assert readyz(server.url) == 200
                assert all(w.poll() is None for w in server.worker_processes), "a worker exited"
        finally:
            server.stop()


# -- 3. one rate limit shared by three workers --------------------------------------------------------


def test_a_rate_limit_holds_across_three_workers(tmp_path: Path) -> None:
    with distributed(tmp_path, workers=3) as server, Receiver() as receiver:
        admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
        create_webhook(server, admin, receiver.url + "/hooks", rateLimitPerSecond=10)
        published = publish_many(server, publisher, 60)
        wait_until(lambda: event_ids(receiver.requests) >= set(published), timeout=60, interval=0.2)
        time.sleep(0.5)
        times = [r.at for r in receiver.requests]
        assert len(times) == 60, duplicates(receiver.requests)
        timeline = " ".join(f"{t - min(times):.3f}" for t in sorted(times))
        assert max_in_any_second(times) <= 11, f"arrivals (s after the first): {timeline}"
        assert max(times) - min(times) >= 5.0


# -- 4. events published while no worker runs ---------------------------------------------------------


def test_events_published_while_no_worker_runs_are_delivered_when_one_starts(tmp_path: Path) -> None:
    with distributed(tmp_path, workers=0) as server, Receiver() as receiver:
        admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
        webhook = create_webhook(server, admin, receiver.url + "/hooks")
        published = publish_many(server, publisher, 20)
        time.sleep(1.5)  # a sweep or two with nobody to run the jobs
        assert receiver.requests == []
        server.start_worker()
        wait_until(lambda: event_ids(receiver.requests) >= set(published), timeout=30, interval=0.2)
        wait_until(lambda: all_succeeded(server, admin, webhook["id"], 20), timeout=20, interval=0.5)
        assert len(receiver.requests) == 20


# -- 5. SIGTERM lets sends in flight finish ------------------------------------------------------------


def test_sigterm_lets_the_sends_in_flight_finish_and_records_them_once(tmp_path: Path) -> None:
    receiver = SlowReceiver(2.0)
    with distributed(tmp_path, workers=2) as server, receiver:
        admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
        webhook = create_webhook(server, admin, receiver.url + "/hooks")
        published = publish_many(server, publisher, 4)
        wait_until(lambda: len(receiver.started) >= 4, timeout=20)
        assert receiver.requests == []  # all four are in progress
        for worker in server.worker_processes:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(30) for worker in server.worker_processes]
        assert len(receiver.requests) == 4, logs(tmp_path)
        assert event_ids(receiver.requests) == set(published)
        assert codes == [0, 0], logs(tmp_path)

        nodes = wait_until(lambda: all_succeeded(server, admin, webhook["id"], 4), timeout=10, interval=0.3)
        assert [[(a["number"], a["statusCode"]) for a in n["attempts"]] for n in nodes] == [[(1, 200)]] * 4

        server.start_worker()  # a restarted worker finds nothing left to send
        restarted = tmp_path / "worker-2.log"
        wait_until(lambda: "worker ready" in restarted.read_text(errors="replace"), timeout=30, interval=0.2)
        time.sleep(2)  # two sweeps, with a worker to run whatever they queue
        assert len(receiver.started) == 4
        assert duplicates(receiver.requests) == {}
        _, again = all_deliveries(server, admin, webhook["id"])
        assert [len(n["attempts"]) for n in again] == [1] * 4


# -- 6. docker-compose.yml ---------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return parsed


def test_docker_compose_declares_the_distributed_mode() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "gateway", "worker-1", "worker-2"} <= set(services)
    for name in ("gateway", "worker-1", "worker-2"):
        service = services[name]
        environment = service["environment"]
        assert str(environment["HOOKLINE_DATABASE_URL"]).startswith("postgresql://"), name
        assert str(environment["HOOKLINE_REDIS_URL"]).startswith("redis://"), name
        assert "HOOKLINE_SECRET_KEY" in environment, name
        depends = service["depends_on"]
        for needed in ("postgres", "redis"):
            assert depends[needed]["condition"] == "service_healthy", (name, needed)
    for name in ("postgres", "redis", "gateway"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "ping" in services["redis"]["healthcheck"]["test"]
    gateway = services["gateway"]
    command = gateway["command"]
    assert command[:2] == ["hookline", "serve"]
    port = command[command.index("--port") + 1]
    assert f"127.0.0.1:{port}/readyz" in " ".join(gateway["healthcheck"]["test"])
    assert any(str(p).endswith(f":{port}") for p in gateway["ports"])
    worker = services["worker-1"]
    assert services["worker-2"]["command"] == worker["command"]
    assert worker["command"][:2] == ["hookline", "worker"]
    readiness = worker["command"][worker["command"].index("--readiness-port") + 1]
    assert f"127.0.0.1:{readiness}/readyz" in " ".join(services["worker-2"]["healthcheck"]["test"])


SERVICES = ("gateway", "worker-1", "worker-2")


def local_command(command: list[str], port: int) -> list[str]:
    """A compose command as it runs here: our `hookline`, on 127.0.0.1 and a free port (a worker's
    readiness on another free port)."""
    assert command[0] == "hookline"
    adjusted = [HOOKLINE, *command[1:]]
    for option, value in (
        ("--host", "127.0.0.1"),
        ("--port", str(port)),
        ("--readiness-port", str(free_port())),
    ):
        if option in adjusted:
            adjusted[adjusted.index(option) + 1] = value
    return adjusted


def test_the_compose_commands_deliver_an_event_end_to_end(tmp_path: Path) -> None:
    services = compose()["services"]
    names = ("HOOKLINE_DATABASE_URL", "HOOKLINE_REDIS_URL", "HOOKLINE_SECRET_KEY")
    assert all(n in services["gateway"]["environment"] for n in names)
    port = free_port()
    with postgres_database() as database, redis_database() as redis_url, Receiver() as receiver:
        env = server_env(
            HOOKLINE_DATABASE_URL=database,
            HOOKLINE_REDIS_URL=redis_url,
            HOOKLINE_SECRET_KEY=SECRET,
            HOOKLINE_SWEEP_SECONDS="1",
            # compose says "false", which is right there; our receiver listens on loopback
            HOOKLINE_ALLOW_PRIVATE_TARGETS="true",
        )
        processes: list[subprocess.Popen[bytes]] = []
        server = Server(directory=tmp_path, env=env, port=port)
        commands = {name: local_command(services[name]["command"], port) for name in SERVICES}
        workers_ready = [
            f"http://127.0.0.1:{commands[name][commands[name].index('--readiness-port') + 1]}"
            for name in SERVICES[1:]
        ]
        try:
            for name in SERVICES:  # started together, as `docker compose up` starts them
                with (tmp_path / f"{name}.log").open("ab") as sink:
                    processes.append(
                        subprocess.Popen(
                            commands[name],
                            cwd=tmp_path,
                            env=env,
                            stdout=sink,
                            stderr=subprocess.STDOUT,
                        )
                    )

            def running() -> None:
                exited = {
                    n: p.returncode for n, p in zip(SERVICES, processes, strict=True) if p.poll() is not None
                }
                assert not exited, f"exited: {exited}\n{logs(tmp_path)}"

            def ready() -> bool:
                running()
                workers = [(tmp_path / f"{n}.log").read_text(errors="replace") for n in SERVICES[1:]]
                return (
                    readyz_or_none(server.url) == 200
                    and all("worker ready" in w for w in workers)
                    and all(readyz_or_none(url) == 200 for url in workers_ready)
                )

            wait_until(ready, timeout=30, interval=0.2)
            admin, publisher = server.key("acme", "admin"), server.key("acme", "publisher")
            webhook = create_webhook(server, admin, receiver.url + "/hooks")
            event_id = publish(server, publisher, 1)

            def arrived() -> bool:
                running()
                return len(receiver.requests) >= 1

            wait_until(arrived, timeout=30, interval=0.2)
            (request,) = receiver.requests
            assert json.loads(request.body)["id"] == event_id
            wait_until(lambda: all_succeeded(server, admin, webhook["id"], 1), timeout=10, interval=0.3)
            assert readyz(server.url) == 200
            running()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def readyz_or_none(url: str) -> int | None:
    try:
        return readyz(url)
    except OSError:
        return None


# -- deliveryUpdates through another gateway ------------------------------------------------------------

SUBSCRIBE = "subscription { deliveryUpdates { cursor deliveryId status } }"


async def subscribe_and_publish(
    second: Server, key: str, publish_through_first: Callable[[], object], wanted: set[str], seconds: float
) -> list[dict[str, Any]]:
    """Subscribes on `second`, then calls `publish_through_first` (in a thread); collects updates until
    every status in `wanted` has been seen for one delivery, or for `seconds`."""
    updates: list[dict[str, Any]] = []
    ws_url = second.url.replace("http://", "ws://") + "/graphql"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, protocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        ack = await ws.receive_json(timeout=10)
        assert ack["type"] == "connection_ack", ack
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await asyncio.sleep(0.5)  # let the subscription register before anything happens
        await asyncio.to_thread(publish_through_first)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = await ws.receive_json(timeout=max(deadline - time.monotonic(), 0.1))
            except TimeoutError:
                break
            if message["type"] == "ping":
                await ws.send_json({"type": "pong"})
                continue
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            updates.append(message["payload"]["data"]["deliveryUpdates"])
            by_delivery: dict[str, set[str]] = {}
            for update in updates:
                by_delivery.setdefault(update["deliveryId"], set()).add(update["status"])
            if any(wanted <= statuses for statuses in by_delivery.values()):
                break
        await ws.send_json({"id": "1", "type": "complete"})
    return updates


def test_delivery_updates_on_a_second_gateway_show_what_the_workers_record(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    with distributed_env(HOOKLINE_ALLOW_PRIVATE_TARGETS="true") as env, Receiver() as receiver:
        first = Server(directory=first_dir, env=env, workers=2)
        second = Server(directory=second_dir, env=env)
        try:
            first.start()
            second.start()
            admin, publisher = first.key("acme", "admin"), first.key("acme", "publisher")
            create_webhook(first, admin, receiver.url + "/hooks")
            published: list[str] = []
            updates = asyncio.run(
                subscribe_and_publish(
                    second,
                    admin,
                    lambda: published.append(publish(first, publisher, 1)),
                    {"PENDING", "SUCCEEDED"},
                    seconds=30,
                )
            )
            (request,) = receiver.wait_for(1)
            delivery_id = request.headers["webhook-id"]
            statuses = [u["status"] for u in updates if u["deliveryId"] == delivery_id]
            assert "PENDING" in statuses, (updates, logs(tmp_path))
            assert "SUCCEEDED" in statuses, (updates, logs(tmp_path))
            assert statuses.index("PENDING") < statuses.index("SUCCEEDED")
            cursors = [int(u["cursor"]) for u in updates]
            assert cursors == sorted(set(cursors))
        finally:
            second.stop()
            first.stop()


# -- a late copy of a job that already ran -----------------------------------------------------------


def test_a_late_copy_of_a_job_that_already_ran_does_not_send_that_attempt_again(tmp_path: Path) -> None:
    """The dispatcher and the sweeper may queue a delivery's job again after it ran (arq keeps no
    trace of finished jobs); that copy must end, not wait for the next attempt and send it twice."""
    receiver = Receiver()
    receiver.respond = lambda _: (500, {}, "down")
    schedule = "3,3"
    with distributed(tmp_path, workers=1, HOOKLINE_RETRY_SCHEDULE=schedule) as server, receiver:
        admin = server.key("acme", "admin")
        create_webhook(server, admin, receiver.url + "/late")
        publish(server, admin, 1)
        first = receiver.wait_for(1, timeout=20)[0]
        delivery_id = first.headers["webhook-id"]

        def delivery() -> dict[str, Any]:
            found: dict[str, Any] = server.gql(admin, DELIVERY, {"id": delivery_id}).ok()["delivery"] or {}
            return found  # {} until serve's read model has it: it may be sent before that

        wait_until(lambda: delivery().get("nextAttemptAt") is not None, timeout=10)
        assert delivery()["status"] == "RETRYING"

        async def copies() -> None:  # what a lagging dispatcher would queue: the first attempt's job
            redis = await create_pool(RedisSettings.from_dsn(server.env["HOOKLINE_REDIS_URL"]))
            try:
                for _ in range(3):
                    await redis.enqueue_job(
                        DELIVER, delivery_id, due_key(None), _job_id=deliver_job_id(UUID(delivery_id), None)
                    )
                    await asyncio.sleep(0.3)
            finally:
                await redis.aclose()

        asyncio.run(copies())
        attempts = len(schedule.split(",")) + 1
        wait_until(lambda: delivery()["status"] == "FAILED", timeout=30)
        time.sleep(1.5)  # a doubled last attempt would arrive now
        sent = [r for r in receiver.requests if r.headers["webhook-id"] == delivery_id]
        gaps = [round(later.at - earlier.at, 2) for earlier, later in itertools.pairwise(sent)]
        assert len(sent) == attempts, f"sends {gaps} s apart\n{logs(tmp_path)}"
        assert min(gaps) > 1.5, f"sends {gaps} s apart: one attempt went twice\n{logs(tmp_path)}"
        assert [a["statusCode"] for a in delivery()["attempts"]] == [500] * attempts
