"""The test suite's names for the harness (harness/): a real `hookline serve`, the real CLI, a real receiver,
PostgreSQL and Redis of one's own."""

from __future__ import annotations

from harness import services
from harness.receiver import Received, Receiver
from harness.server import BIN, HOOKLINE, GraphQLResult, Server, free_port, server_env, wait_until
from harness.services import (
    POSTGRES,
    REDIS_DATABASES,
    RedisServer,
    distributed_env,
    postgres_database,
    private_redis,
    redis_base,
    redis_database,
    running_server,
    use_redis,
)

__all__ = [
    "BIN",
    "HOOKLINE",
    "POSTGRES",
    "REDIS_DATABASES",
    "GraphQLResult",
    "Received",
    "Receiver",
    "RedisServer",
    "Server",
    "distributed_env",
    "free_port",
    "postgres_database",
    "private_redis",
    "redis_base",
    "redis_database",
    "running_server",
    "server_env",
    "use_redis",
    "wait_until",
]


def __getattr__(name: str) -> str:
    if name == "REDIS":  # the session's Redis, read where use_redis set it (never a stale copy)
        return services.REDIS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
