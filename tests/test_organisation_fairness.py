"""One organisation cannot starve the others: its hanging targets hold at most its share of a process's
delivery slots, and `sendTest` sends on connections of its own.

Through a real `hookline serve` (and, distributed, its workers) with real receivers: one that answers at
once, and one that holds every request longer than the test lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from tests.queries import CREATE_WEBHOOK, PUBLISH, webhook_input
from tests.support import Received, Receiver, Server, running_server, server_env, wait_until

HANG = 30.0  # seconds the hanging receiver holds each request: longer than the test
ARRIVES_WITHIN = 2.0
PUBLISH_MANY = "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId } }"
SEND_TEST = """
mutation($id: ID!) { sendTest(webhookId: $id) { success statusCode durationMs errors } }
"""
# Sends hang until the receiver lets go, and nothing is retried within the test.
HANGING_ENV = {
    "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
    "HOOKLINE_REQUEST_TIMEOUT_SECONDS": "60",
    "HOOKLINE_RETRY_SCHEDULE": "3600",
}


class HangingReceiver(Receiver):
    """Records each request as it arrives, then answers it after HANG seconds, or when the test ends."""

    def __enter__(self) -> HangingReceiver:
        self._let_go = asyncio.Event()
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._let_go.set)
        time.sleep(0.5)  # the answers go out, so that nothing waits for them at shutdown
        super().__exit__(*exc)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Received(request.method, request.path_qs, dict(request.headers), body, time.monotonic())
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._let_go.wait(), HANG)
        return web.Response(text="late")


@dataclass
class Org:
    admin: str
    publisher: str


def new_org(server: Server) -> Org:
    name = f"fair-{uuid.uuid4().hex[:12]}"
    return Org(admin=server.key(name, "admin"), publisher=server.key(name, "publisher"))


def create_webhook(server: Server, org: Org, url: str, event_type: str) -> str:
    created = server.gql(
        org.admin, CREATE_WEBHOOK, {"input": webhook_input(url, eventTypes=[event_type], allowDuplicate=True)}
    ).ok()["createWebhook"]
    return str(created["id"])


def flood(server: Server, org: Org, event_type: str, count: int) -> None:
    events = [{"type": event_type, "payload": {"n": i}} for i in range(count)]
    server.gql(org.publisher, PUBLISH_MANY, {"input": events}).ok()


def settled(receiver: Receiver, at_least: int, quiet: float = 1.0, timeout: float = 20.0) -> int:
    """Waits until `receiver` holds at least `at_least` requests and no more came for `quiet` s."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(receiver.requests)
        if count != seen:
            seen, since = count, time.monotonic()
        elif count >= at_least and time.monotonic() - since >= quiet:
            return count
        time.sleep(0.1)
    raise AssertionError(f"{len(receiver.requests)} requests held, expected at least {at_least}")


@pytest.fixture(params=["embedded", "distributed"])
def hanging_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"fair-{request.param}")
    with running_server(directory, request.param, workers=2, **HANGING_ENV) as server:
        yield server


def test_an_organisations_three_hanging_webhooks_do_not_hold_up_another_organisations_delivery(
    hanging_server: Server, receiver: Receiver
) -> None:
    """Sixty events to three webhooks of one organisation whose target never answers in time: they
    take that organisation's share of the delivery slots (embedded: of HOOKLINE_DELIVERY_CONCURRENCY;
    distributed: of each worker's HOOKLINE_WORKER_JOBS), and another organisation's delivery arrives
    at once."""
    server = hanging_server
    greedy, other = new_org(server), new_org(server)
    with HangingReceiver() as hanging:
        for i in range(3):
            create_webhook(server, greedy, f"{hanging.url}/hook-{i}", "fair.flood")
        create_webhook(server, other, receiver.url + "/other", "fair.other")

        flood(server, greedy, "fair.flood", 60)
        held = settled(hanging, at_least=20)
        began = time.monotonic()
        server.gql(other.publisher, PUBLISH, {"input": {"type": "fair.other", "payload": {"n": 1}}}).ok()
        try:
            receiver.wait_for(1, timeout=HANG)
        except AssertionError:
            pytest.fail(f"the other organisation's delivery did not arrive within {HANG} s ({held} held)")
        latency = receiver.requests[0].at - began

    assert latency < ARRIVES_WITHIN, (
        f"the other organisation's delivery took {latency:.2f} s while {held} requests of one "
        f"organisation hung ({server.mode})"
    )


def test_send_test_answers_while_hanging_deliveries_hold_every_delivery_connection(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    """Embedded, with more delivery slots than a process has delivery connections (256): two
    organisations' hanging deliveries hold every one of those connections; a sendTest to a target
    that answers at once still answers within two seconds, on connections of its own."""
    env = server_env(**HANGING_ENV, HOOKLINE_DELIVERY_CONCURRENCY="300")
    server = Server(directory=tmp_path_factory.mktemp("send-test"), env=env)
    try:
        server.start()
        first, second = new_org(server), new_org(server)
        with HangingReceiver() as hanging:
            for org, webhooks in ((first, 8), (second, 3)):
                for i in range(webhooks):
                    create_webhook(server, org, f"{hanging.url}/hook-{i}", "fair.flood")
            quick = create_webhook(server, first, receiver.url + "/test", "fair.test")

            flood(server, first, "fair.flood", 40)
            wait_until(lambda: len(hanging.requests) >= 200, timeout=20)
            flood(server, second, "fair.flood", 40)
            held = settled(hanging, at_least=256)

            began = time.monotonic()
            result = server.gql(first.admin, SEND_TEST, {"id": quick}).ok()["sendTest"]
            took = time.monotonic() - began
    finally:
        server.stop()

    assert result["success"], (result, f"{held} deliveries held")
    assert result["errors"] == []
    assert took < ARRIVES_WITHIN, f"sendTest took {took:.2f} s while {held} deliveries hung"
    assert [r.path for r in receiver.requests] == ["/test"]
