"""What the benchmarks publish, and how: 1 KiB payloads that carry their own send time, the envelope
Hookline sends for them, and a client that publishes saturated (in batches, or one event a request) or
at a fixed rate; one event a request goes through GraphQL's publishEvent, or (`via="http"`) as a plain
`POST /events/{type}` of the payload."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

EVENT_TYPE = "bench.e2e"
PAYLOAD_BYTES = 1024
PUBLISH_ONE = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { eventId duplicate } }"
PUBLISH_MANY = (
    "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId duplicate } }"
)


WORDS = [
    "server",
    "database",
    "network",
    "latency",
    "outage",
    "disk",
    "memory",
    "cpu",
    "login",
    "password",
    "reset",
    "printer",
    "email",
    "vpn",
    "firewall",
    "certificate",
    "expired",
    "timeout",
    "error",
    "warning",
    "critical",
    "degraded",
    "restart",
    "deploy",
    "rollback",
    "customer",
    "user",
    "ticket",
    "incident",
    "change",
    "request",
    "approval",
    "pending",
    "resolved",
    "escalated",
    "queue",
    "backup",
    "storage",
    "cluster",
    "node",
    "pod",
    "container",
    "service",
    "gateway",
    "proxy",
    "cache",
    "replica",
    "primary",
    "failover",
    "alert",
    "threshold",
    "exceeded",
    "report",
    "slow",
    "unable",
    "access",
    "denied",
    "permission",
    "update",
    "patch",
    "version",
    "release",
]
STATES = ("new", "in_progress", "on_hold", "resolved", "closed")
GROUPS = ("service-desk", "network-ops", "database-admins", "platform", "security", "end-user-support")


def payload(seq: int, run: str, sent_at: float) -> dict[str, Any]:
    """The event's data: `seq`, `run`, `sent_at` and an ITSM-incident-like record of about PAYLOAD_BYTES of
    compact JSON: several keys, words drawn from a fixed vocabulary and ids and numbers from an RNG seeded
    by `seq` (reproducible), so that it compresses as real payloads do (zlib: 2-3x), not as padding (50x)."""
    rng = random.Random(seq)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    data: dict[str, Any] = {
        "seq": seq,
        "run": run,
        "sent_at": sent_at,
        "number": f"INC{rng.randrange(10**7):07d}",
        "sys_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        "state": rng.choice(STATES),
        "priority": rng.randint(1, 5),
        "impact": rng.randint(1, 3),
        "urgency": rng.randint(1, 3),
        "assignment_group": rng.choice(GROUPS),
        "assigned_to": f"user{rng.randrange(100_000)}",
        "caller_id": f"user{rng.randrange(100_000)}",
        "cmdb_ci": f"{rng.choice(WORDS)}-{rng.randrange(1000):03d}",
        "opened_at": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
        "reassignment_count": rng.randint(0, 9),
        "short_description": words(8),
        "work_notes": [],
        "description": "",
    }
    while len(data["work_notes"]) < 3:
        data["work_notes"].append({"author": f"user{rng.randrange(100_000)}", "text": words(12)})
    wanted = max(0, PAYLOAD_BYTES - len(orjson.dumps(data)))  # the description's length: 1 KiB in all
    description = ""
    while len(description) < wanted:
        description += rng.choice(WORDS) + " "
    data["description"] = description[:wanted]
    return data


def envelope(seq: int, run: str, sent_at: float, organization_id: str) -> bytes:
    """The body Hookline sends for an event when the webhook has no template."""
    return orjson.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": EVENT_TYPE,
            "occurredAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "organizationId": organization_id,
            "data": payload(seq, run, sent_at),
        }
    )


@dataclass
class Published:
    started: float  # time.time() when the first publish request was stamped
    finished: float = 0.0  # time.time() when the last publish request returned
    request_seconds: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    max_lag: float | None = None

    def failed(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what[:500]


class Publisher:
    def __init__(self, session: aiohttp.ClientSession, url: str, key: str, via: str = "graphql") -> None:
        self.session = session
        self.url = url + "/graphql"
        self.events_url = f"{url}/events/{EVENT_TYPE}"
        self.via = via
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def _send(self, url: str, body: bytes, published: Published) -> tuple[int, bytes] | None:
        """The answer's status and body, timed; None (counted as an error) when none came."""
        began = time.perf_counter()
        try:
            async with self.session.post(url, data=body, headers=self.headers) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            published.failed(f"{type(error).__name__}: {error}")
            return None
        finally:
            published.request_seconds.append(time.perf_counter() - began)
            published.finished = max(published.finished, time.time())

    async def post(self, query: str, variables: dict[str, Any], count: int, published: Published) -> None:
        answer = await self._send(self.url, orjson.dumps({"query": query, "variables": variables}), published)
        if answer is None:
            return
        status, raw = answer
        try:
            result = orjson.loads(raw)
        except orjson.JSONDecodeError:
            published.failed(f"HTTP {status}: {raw[:300]!r}")
            return
        if status != 200 or result.get("errors"):
            published.failed(f"HTTP {status}: {orjson.dumps(result.get('errors'))[:300].decode()}")
            return
        answers = next(iter((result.get("data") or {}).values()), None)
        if len(answers if isinstance(answers, list) else [answers] if answers else []) != count:
            published.failed(f"{count} events sent, answer: {raw[:300]!r}")

    async def publish_one(self, data: dict[str, Any], published: Published) -> None:
        """One event in one request, by GraphQL or by `POST /events/{type}` (answered 202)."""
        if self.via != "http":
            await self.post(PUBLISH_ONE, {"input": {"type": EVENT_TYPE, "payload": data}}, 1, published)
            return
        answer = await self._send(self.events_url, orjson.dumps(data), published)
        if answer is not None and (answer[0] != 202 or b'"eventId"' not in answer[1]):
            published.failed(f"HTTP {answer[0]}: {answer[1][:300]!r}")

    async def saturated(self, run: str, events: int, batch: int, concurrency: int) -> Published:
        """`publishEvents`, `batch` events a request, `concurrency` requests in flight."""
        published = Published(started=time.time())
        firsts = iter(range(0, events, batch))

        async def loop() -> None:
            for first in firsts:
                count = min(batch, events - first)
                sent_at = time.time()
                inputs = [
                    {"type": EVENT_TYPE, "payload": payload(first + k, run, sent_at)} for k in range(count)
                ]
                await self.post(PUBLISH_MANY, {"input": inputs}, count, published)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return published

    async def per_request(self, run: str, events: int, in_flight: int) -> Published:
        """One event a request (`publish_one`), `in_flight` requests in flight (each loop keeps its
        keep-alive connection), as a source system that sends each event as it happens."""
        published = Published(started=time.time())
        sequence = iter(range(events))

        async def loop() -> None:
            for seq in sequence:
                await self.publish_one(payload(seq, run, time.time()), published)

        await asyncio.gather(*(loop() for _ in range(min(in_flight, events))))
        return published

    async def fixed_rate(self, run: str, events: int, rate: float, concurrency: int) -> Published:
        """One event a request (`publish_one`), started every 1/rate s, at most `concurrency` in flight."""
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(concurrency)
        published = Published(started=time.time(), max_lag=0.0)
        begin = loop.time()
        tasks: set[asyncio.Task[None]] = set()

        async def one(seq: int) -> None:
            try:
                await self.publish_one(payload(seq, run, time.time()), published)
            finally:
                slots.release()

        for seq in range(events):
            due = begin + seq / rate
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            published.max_lag = max(published.max_lag or 0.0, loop.time() - due)
            task = asyncio.create_task(one(seq))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*tasks)
        return published
