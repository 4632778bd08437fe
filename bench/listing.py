"""What `bench.readmodels` lists to time webhooks' health: the newest LISTED webhooks, page after page,
with every `health` field and without (each of them has an attempt an hour for HEALTH_HOURS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

LISTED = 1_000  # webhooks listed with their health, two pages of 500 (MAX_PAGE)
HEALTH_HOURS = 24  # of attempts for each listed webhook, one an hour
HEALTH_FIELDS = (
    "health { attempts failures successRate latencyP50Ms latencyP95Ms consecutiveFailures"
    " lastSuccessAt lastFailureAt statusCodes { statusCode count } }"
)
LISTED_PAGE = """query($after: String) {{
  webhooks(first: 500, after: $after) {{
    pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {fields} }} }}
  }}
}}"""
LISTINGS = (("webhooks_1000", "id name"), ("webhooks_1000_health", f"id name {HEALTH_FIELDS}"))
Post = Callable[[str, dict[str, Any]], Awaitable[tuple[float, Any]]]
"""A GraphQL request's time (ms) and data."""


async def list_all(post: Post, query: str, warmup: int, n: int) -> list[float]:
    """The time of listing the first LISTED webhooks, page after page, `n` times (after `warmup`)."""
    samples = []
    for round_ in range(warmup + n):
        total_ms, after = 0.0, None
        for _ in range(LISTED // 500):
            elapsed_ms, data = await post(query, {"after": after})
            total_ms += elapsed_ms
            after = data["webhooks"]["pageInfo"]["endCursor"]
        if round_ >= warmup:
            samples.append(total_ms)
    return samples
