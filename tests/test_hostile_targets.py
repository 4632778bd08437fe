"""Targets that fight back: DNS rebinding, redirects, endless bodies, silence and slow drips.

The sender re-checks the address it connects to after DNS resolution, follows no redirect, and bounds
every attempt (connect and total timeouts, a 4 KiB read); meanwhile other webhooks' deliveries flow.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from domain.deliveries import MAX_RESPONSE_BODY
from domain.requests import OutgoingRequest
from harness.threaded import ThreadedServer
from hookline.settings import Settings
from tests.queries import CREATE_WEBHOOK, DELIVERIES, webhook_input
from tests.support import Receiver, Server, running_server, wait_until
from workers.sender import Sender
from workers.slots import embedded_share, worker_share

CONNECT_TIMEOUT = 2.0
REQUEST_TIMEOUT = 3.0
SLACK = 2.0  # scheduling, recording and polling on a busy machine
HUGE = 100 * 1024 * 1024


class LyingResolver(AbstractResolver):
    """Answers every name from a table, as a rebinding DNS server would: a public-looking name that
    resolves to an address webhooks may not reach."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        address = self.answers[host]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


@asynccontextmanager
async def started(sender: Sender) -> AsyncIterator[Sender]:
    await sender.start()
    try:
        yield sender
    finally:
        await sender.close()


def sender(allow_private_targets: bool, resolver: AbstractResolver | None = None) -> Sender:
    return Sender(
        allow_private_targets=allow_private_targets,
        clock=lambda: datetime.now(UTC),
        connect_timeout=CONNECT_TIMEOUT,
        total_timeout=REQUEST_TIMEOUT,
        resolver=resolver,
    )


def post(url: str) -> OutgoingRequest:
    return OutgoingRequest(
        method="POST", url=url, headers={"Content-Type": "application/json"}, body=b'{"n": 1}'
    )


# -- (a) DNS rebinding: the address is checked after resolution, at send time -----------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "metadata"),
        ("0.0.0.0", "unspecified"),
        # IPv6 forms that carry an IPv4 address are judged by it (and named after it)
        ("::127.0.0.1", "loopback address (127.0.0.1 inside an IPv4-compatible address)"),
        ("::ffff:0:10.1.2.3", "private address (10.1.2.3 inside an IPv4-translated address)"),
        ("64:ff9b::127.0.0.1", "loopback address (127.0.0.1 inside a NAT64 address)"),
        ("64:ff9b::169.254.169.254", "metadata address (169.254.169.254 inside a NAT64"),
        ("64:ff9b:1::10.1.2.3", "private address (10.1.2.3 inside a local-use NAT64 address)"),
        ("2002:a9fe:a9fe::1", "metadata address (169.254.169.254 inside a 6to4 address)"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback address (127.0.0.1 inside a Teredo address)"),
        ("2600::5efe:192.168.0.10", "private address (192.168.0.10 inside an ISATAP address)"),
    ],
)
async def test_a_public_looking_name_that_resolves_to_a_forbidden_address_is_refused_at_send_time(
    receiver: Receiver, address: str, kind: str
) -> None:
    resolver = LyingResolver({"hooks.example.com": address})
    async with started(sender(False, resolver)) as lying:
        attempt = await lying.send(post(f"http://hooks.example.com:{receiver.port}/rebound"), 1)

    assert resolver.asked == ["hooks.example.com"]
    assert attempt.status_code is None
    assert attempt.error is not None
    assert "refused" in attempt.error
    assert kind in attempt.error
    assert attempt.response_body is None
    assert attempt.duration_ms < CONNECT_TIMEOUT * 1000
    await asyncio.sleep(0.2)
    assert receiver.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
async def test_a_literal_loopback_target_is_refused_the_same_way(receiver: Receiver, host: str) -> None:
    async with started(sender(False)) as strict:
        attempt = await strict.send(post(f"http://{host}:{receiver.port}/literal"), 1)

    assert attempt.status_code is None
    assert attempt.error is not None
    assert "refused" in attempt.error
    await asyncio.sleep(0.2)
    assert receiver.requests == []


async def test_with_private_targets_allowed_the_rebound_name_is_delivered(receiver: Receiver) -> None:
    resolver = LyingResolver({"hooks.example.com": "127.0.0.1"})
    async with started(sender(True, resolver)) as lenient:
        attempt = await lenient.send(post(f"http://hooks.example.com:{receiver.port}/rebound"), 1)

    assert attempt.error is None, attempt
    assert attempt.status_code == 200
    [received] = receiver.wait_for(1)
    assert received.path == "/rebound"
    assert received.body == b'{"n": 1}'


# -- (b) redirects are not followed ------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_recorded_as_it_came_and_not_followed(receiver: Receiver, status: int) -> None:
    receiver.respond = lambda r: (
        (status, {"Location": receiver.url + "/elsewhere"}, "moved")
        if r.path == "/start"
        else (200, {}, "ok")
    )
    async with started(sender(True)) as lenient:
        attempt = await lenient.send(post(receiver.url + "/start"), 1)

    assert attempt.status_code == status
    assert attempt.error == f"HTTP {status}"
    assert not attempt.succeeded
    await asyncio.sleep(0.3)
    assert [r.path for r in receiver.requests] == ["/start"]


async def test_a_redirect_into_the_network_is_not_followed_either(receiver: Receiver) -> None:
    """The redirect itself is the answer: the sender does not go to 127.0.0.1 on the target's word."""
    resolver = LyingResolver({"public.example.com": "127.0.0.1"})
    receiver.respond = lambda r: (302, {"Location": f"http://127.0.0.1:{receiver.port}/inside"}, "")
    async with started(sender(True, resolver)) as lenient:
        attempt = await lenient.send(post(f"http://public.example.com:{receiver.port}/start"), 1)

    assert attempt.status_code == 302
    await asyncio.sleep(0.3)
    assert [r.path for r in receiver.requests] == ["/start"]


# -- (c) hostile targets through a real server, in both modes ----------------------------------------


@dataclass
class Visit:
    path: str
    arrived: float
    closed: float | None = None  # when the client went away
    written: int = 0  # bytes of the answer that got out
    answered: float | None = None  # /slow: when its answer started to go out


class HostileTarget(ThreadedServer):
    """A raw TCP server whose answer depends on the path:

    /huge          200 with a 100 MB Content-Length body, streamed as fast as the client reads
    /huge-chunked  200 with a chunked body of 100 MB
    /hang          reads the request and never answers
    /drip          200 headers, then one byte of body a second
    /drip-headers  the status line and headers, one byte a second
    /redirect      302 to /landed;  /landed  200
    /slow          200 after SLOW seconds
    """

    limit_seconds = 30.0  # no handler lives longer than this, whatever the client does

    def __init__(self) -> None:
        super().__init__()
        self.visits: list[Visit] = []

    def visited(self, path: str) -> list[Visit]:
        return [v for v in self.visits if v.path == path]

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            visit = Visit(path=path, arrived=time.monotonic())
            self.visits.append(visit)
            gone = asyncio.ensure_future(reader.read())  # b"" once the client closes
            handler = getattr(self, "_" + path.strip("/").replace("-", "_"), self._landed)
            try:
                await asyncio.wait_for(handler(writer, visit, gone), self.limit_seconds)
            except (OSError, TimeoutError):
                pass
            finally:
                with suppress(TimeoutError, OSError):
                    await asyncio.wait_for(asyncio.shield(gone), 0.5)
                if gone.done() and visit.closed is None:
                    visit.closed = time.monotonic()
                gone.cancel()
                writer.close()

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, visit: Visit, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        visit.written += len(data)

    async def _until_gone(self, visit: Visit, gone: asyncio.Future[bytes]) -> bool:
        if gone.done():
            visit.closed = visit.closed or time.monotonic()
            return True
        return False

    async def _huge(self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]) -> None:
        await self._write(writer, visit, f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\n".encode())
        chunk = b"x" * 65536
        sent = 0
        while sent < HUGE and not await self._until_gone(visit, gone):
            await self._write(writer, visit, chunk)
            sent += len(chunk)

    async def _huge_chunked(
        self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]
    ) -> None:
        await self._write(writer, visit, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"y" * 65536 + b"\r\n"
        sent = 0
        while sent < HUGE and not await self._until_gone(visit, gone):
            await self._write(writer, visit, chunk)
            sent += 65536
        await self._write(writer, visit, b"0\r\n\r\n")

    async def _hang(self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]) -> None:
        await asyncio.shield(gone)
        visit.closed = time.monotonic()

    async def _drip(self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]) -> None:
        await self._write(writer, visit, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while not await self._until_gone(visit, gone):
            await self._write(writer, visit, b"z")
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(gone), 1.0)

    async def _drip_headers(
        self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]
    ) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
            if await self._until_gone(visit, gone):
                return
            await self._write(writer, visit, bytes([byte]))
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(gone), 1.0)

    async def _redirect(
        self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]
    ) -> None:
        location = f"{self.url}/landed"
        answer = (
            f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await self._write(writer, visit, answer.encode())

    async def _slow(self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]) -> None:
        await asyncio.sleep(SLOW)
        visit.answered = time.monotonic()  # before the client can have the answer and send again
        await self._landed(writer, visit, gone)

    async def _landed(self, writer: asyncio.StreamWriter, visit: Visit, gone: asyncio.Future[bytes]) -> None:
        await self._write(
            writer, visit, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        )


SLOW = 0.2
SWEEP_SECONDS = 5.0  # HOOKLINE_SWEEP_SECONDS's default, which quick_server keeps
EMBEDDED_SHARE = embedded_share(Settings.model_fields["delivery_concurrency"].default)  # also kept
CUT_OFF_PATHS = ["huge", "huge-chunked", "hang", "drip", "drip-headers"]  # the sender must cut these off
HOSTILE_PATHS = [*CUT_OFF_PATHS, "redirect"]


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def quick_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server that may reach loopback targets, with short timeouts and no retry within the test."""
    env = {
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
        "HOOKLINE_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
        "HOOKLINE_REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT),
        "HOOKLINE_RETRY_SCHEDULE": "3600",
    }
    directory = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with running_server(directory, request.param, workers=2, **env) as server:
        yield server


@dataclass
class Org:
    admin: str
    publisher: str


def new_org(server: Server) -> Org:
    name = f"hostile-{uuid.uuid4().hex[:12]}"
    return Org(admin=server.key(name, "admin"), publisher=server.key(name, "publisher"))


PUBLISH_MANY = "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId } }"


def create_webhook(server: Server, org: Org, url: str, event_type: str) -> str:
    created = server.gql(
        org.admin, CREATE_WEBHOOK, {"input": webhook_input(url, eventTypes=[event_type], allowDuplicate=True)}
    ).ok()["createWebhook"]
    return str(created["id"])


def publish(server: Server, org: Org, event_type: str, count: int, **payload: Any) -> None:
    events = [{"type": event_type, "payload": {"n": i, **payload}} for i in range(count)]
    server.gql(org.publisher, PUBLISH_MANY, {"input": events}).ok()


def first_attempt(server: Server, org: Org, webhook_id: str) -> dict[str, Any]:
    def attempted() -> dict[str, Any] | None:
        edges = server.gql(org.admin, DELIVERIES, {"webhookId": webhook_id}).ok()["deliveries"]["edges"]
        attempts = edges[0]["node"]["attempts"] if edges else []
        return dict(attempts[0]) if attempts else None

    found: dict[str, Any] = wait_until(attempted, timeout=REQUEST_TIMEOUT + 15)
    return found


def measure_fast_deliveries(server: Server, org: Org, receiver: Receiver, count: int) -> list[float]:
    """Publishes `count` fast events one at a time; how long each took to reach the receiver."""
    latencies = []
    for i in range(count):
        already = len(receiver.requests)
        began = time.monotonic()
        publish(server, org, "hostile.fast", 1, i=i)
        receiver.wait_for(already + 1, timeout=30)
        latencies.append(receiver.requests[already].at - began)
        time.sleep(0.1)
    return latencies


def assert_not_delayed(baseline: list[float], meanwhile: list[float]) -> None:
    """No fast delivery took more than a second longer than the slowest did with no hostile target
    (in distributed mode a delivery crosses Redis and the log follower twice, so it is never instant)."""
    allowed = max(baseline) + 1.0
    assert max(meanwhile) < allowed, (
        f"fast deliveries took {[round(x, 2) for x in meanwhile]} s with hostile targets in flight, "
        f"{[round(x, 2) for x in baseline]} s without"
    )


def test_hostile_targets_are_cut_off_and_recorded_while_other_deliveries_flow(
    quick_server: Server, receiver: Receiver
) -> None:
    org = new_org(quick_server)
    with HostileTarget() as hostile:
        webhooks = {
            path: create_webhook(quick_server, org, f"{hostile.url}/{path}", "hostile.event")
            for path in HOSTILE_PATHS
        }
        create_webhook(quick_server, org, receiver.url + "/fast", "hostile.fast")
        baseline = measure_fast_deliveries(quick_server, org, receiver, 3)

        publish(quick_server, org, "hostile.event", 1)
        began = time.monotonic()
        # Every hostile target has its request in flight before the fast deliveries are measured.
        wait_until(lambda: {v.path.strip("/") for v in hostile.visits} >= set(HOSTILE_PATHS), timeout=10)
        latencies = measure_fast_deliveries(quick_server, org, receiver, 5)

        attempts = {path: first_attempt(quick_server, org, webhook) for path, webhook in webhooks.items()}
        cut_off = [v for v in hostile.visits if v.path.strip("/") in CUT_OFF_PATHS]
        wait_until(lambda: all(v.closed for v in cut_off), timeout=SLACK + 5)

    assert_not_delayed(baseline, latencies)
    budget_ms = (REQUEST_TIMEOUT + SLACK) * 1000
    for path, attempt in attempts.items():
        assert attempt["durationMs"] < budget_ms, (path, attempt)
    for path in ("huge", "huge-chunked"):
        attempt = attempts[path]
        assert attempt["statusCode"] == 200, (path, attempt)
        assert len(attempt["responseBody"].encode()) <= MAX_RESPONSE_BODY, path
        assert hostile.visited("/" + path)[0].written < HUGE // 2, "the sender read on instead of cutting off"
    for path in ("hang", "drip-headers"):
        attempt = attempts[path]
        assert attempt["statusCode"] is None, (path, attempt)
        assert attempt["error"] == "timed out", (path, attempt)
        assert attempt["durationMs"] >= REQUEST_TIMEOUT * 1000 * 0.9, (path, attempt)
    drip = attempts["drip"]
    assert drip["error"] == "timed out" or len((drip["responseBody"] or "").encode()) <= MAX_RESPONSE_BODY
    assert attempts["redirect"]["statusCode"] == 302
    assert attempts["redirect"]["error"] == "HTTP 302"
    assert hostile.visited("/landed") == []
    for visit in cut_off:
        assert visit.closed is not None, visit
        assert visit.closed - visit.arrived < REQUEST_TIMEOUT + SLACK, visit
    assert time.monotonic() - began < 60


def test_many_deliveries_to_a_hanging_target_do_not_hold_up_another_webhook(
    quick_server: Server, receiver: Receiver
) -> None:
    """A silent target with more deliveries pending than the delivery concurrency (64 per process):
    the other webhook's deliveries must not queue behind them."""
    org = new_org(quick_server)
    with HostileTarget() as hostile:
        hanging = create_webhook(quick_server, org, f"{hostile.url}/hang", "hostile.event")
        create_webhook(quick_server, org, receiver.url + "/fast", "hostile.fast")
        baseline = measure_fast_deliveries(quick_server, org, receiver, 3)

        publish(quick_server, org, "hostile.event", 150)
        # The hanging target holds as many sends as one webhook may have in flight, and no more.
        wait_until(lambda: len(hostile.visits) >= EMBEDDED_SHARE, timeout=10)
        latencies = measure_fast_deliveries(quick_server, org, receiver, 3)

    assert_not_delayed(baseline, latencies)
    # Every delivery tried before the next test, whose organisation would otherwise share the slots.
    pending = {"webhookId": hanging, "status": "PENDING", "first": 1}
    wait_until(
        lambda: quick_server.gql(org.admin, DELIVERIES, pending).ok()["deliveries"]["totalCount"] == 0,
        timeout=REQUEST_TIMEOUT + SLACK + 10,
    )


def test_a_slow_target_gets_one_webhooks_share_of_sends_at_once_and_every_delivery_once(
    quick_server: Server,
) -> None:
    """80 deliveries to a target that answers after 0.2 s: at most one webhook's share of sends are in
    flight per process (embedded: exactly `embedded_share`, the others waiting off the queue for a send to
    end; a worker: `worker_share` of its jobs), and every delivery arrives once."""
    org = new_org(quick_server)
    count = 80
    with HostileTarget() as hostile:
        create_webhook(quick_server, org, f"{hostile.url}/slow", "hostile.slow")
        publish(quick_server, org, "hostile.slow", count)
        wait_until(lambda: sum(v.answered is not None for v in hostile.visits) >= count, timeout=60)
        time.sleep(1.0)  # a delivery sent twice would arrive now
        visits = list(hostile.visits)
    assert len(visits) == count
    edges = sorted(
        [(v.arrived, 1) for v in visits] + [(v.answered, -1) for v in visits if v.answered is not None]
    )
    peak = max(itertools.accumulate(change for _, change in edges))
    if quick_server.workers:
        share = worker_share(Settings.model_fields["worker_jobs"].default) * quick_server.workers
        assert peak <= share, f"{peak} sends at once to one webhook (at most {share})"
    else:
        assert peak == EMBEDDED_SHARE, f"only {peak} sends at once: deliveries waited for nothing"
        # Taken up as sends end (about 1 s in all), not left for the sweep of the store every 5 s.
        span = max(v.answered or 0.0 for v in visits) - min(v.arrived for v in visits)
        assert span < SWEEP_SECONDS, (
            f"{count} deliveries took {span:.1f} s: waiting ones were left for the sweep"
        )
