"""The raw ceiling: what one aiohttp client achieves posting Hookline's bodies to the same receiver with
the same requests in flight, measured in the same run, so that a run's figures compare with it alone."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp

from bench.publisher import envelope
from bench.receiver import ReceiverProcess, first_arrivals
from bench.report import percentile_ms


async def raw_ceiling(
    receiver: ReceiverProcess, requests: int, concurrency: int, wait_seconds: float
) -> dict[str, Any]:
    """One ClientSession posting Hookline's bodies to the receiver, `concurrency` in flight."""
    organization_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Hookline/raw",
        "webhook-id": str(uuid.uuid4()),
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 43 + "=",
    }
    url = receiver.url + "/raw"
    errors = 0

    async def post_all(session: aiohttp.ClientSession, run: str, n: int) -> None:
        nonlocal errors
        sequence = iter(range(n))

        async def loop() -> None:
            nonlocal errors
            for seq in sequence:
                body = envelope(seq, run, time.time(), organization_id)
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    errors += response.status != 200

        await asyncio.gather(*(loop() for _ in range(min(concurrency, n))))

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await post_all(session, "raw-warmup", concurrency)
        run = f"raw-{uuid.uuid4().hex[:8]}"
        started = time.time()
        await post_all(session, run, requests)
        deadline = time.monotonic() + wait_seconds
        arrived = await receiver.wait_for(session, run, requests, lambda: deadline)
        records = await receiver.results(session, run)
    if errors or arrived < requests:
        raise RuntimeError(f"raw ceiling: {errors} errors, {arrived}/{requests} arrived")
    latencies = sorted(r[0] - r[2] for r in first_arrivals(records).values())
    last = max(r[0] for r in records)
    return {
        "raw_requests": requests,
        "raw_per_s": round(requests / (last - started), 1),
        "raw_latency_p50_ms": percentile_ms(latencies, 50),
        "raw_latency_p99_ms": percentile_ms(latencies, 99),
    }
