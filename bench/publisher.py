"""What the benchmarks publish, and how: 1 KiB payloads that carry their own send time, the envelope
Hookline sends for them, and a GraphQL client that publishes saturated or at a fixed rate."""

from __future__ import annotations

import asyncio
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


def payload(seq: int, run: str, sent_at: float) -> dict[str, Any]:
    """The event's data: `seq`, `run`, `sent_at`, and padding to PAYLOAD_BYTES of compact JSON."""
    data: dict[str, Any] = {"seq": seq, "run": run, "sent_at": sent_at, "pad": ""}
    data["pad"] = "x" * max(0, PAYLOAD_BYTES - len(orjson.dumps(data)))
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
    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session = session
        self.url = url + "/graphql"
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def post(self, query: str, variables: dict[str, Any], count: int, published: Published) -> None:
        body = orjson.dumps({"query": query, "variables": variables})
        began = time.perf_counter()
        try:
            async with self.session.post(self.url, data=body, headers=self.headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            published.failed(f"{type(error).__name__}: {error}")
            return
        finally:
            published.request_seconds.append(time.perf_counter() - began)
            published.finished = max(published.finished, time.time())
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

    async def fixed_rate(self, run: str, events: int, rate: float, concurrency: int) -> Published:
        """`publishEvent`, one event started every 1/rate s, at most `concurrency` in flight."""
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(concurrency)
        published = Published(started=time.time(), max_lag=0.0)
        begin = loop.time()
        tasks: set[asyncio.Task[None]] = set()

        async def one(seq: int) -> None:
            try:
                data = payload(seq, run, time.time())
                await self.post(PUBLISH_ONE, {"input": {"type": EVENT_TYPE, "payload": data}}, 1, published)
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
