from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.application import Hookline
from hookline.wiring import Opened
from tests.apps import opened
from tests.support import (
    Receiver,
    Server,
    private_redis,
    running_server,
    use_redis,
)

MODES = ["embedded", "distributed"]
WORKERS = 2


@pytest.fixture(scope="session", autouse=True)
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every distributed test of this session uses a Redis of its own (a db index each)."""
    with private_redis(tmp_path_factory.mktemp("redis")) as url:
        use_redis(url)
        yield url


def _server(directory: Path, mode: str, **env: str) -> Iterator[Server]:
    with running_server(directory, mode, workers=WORKERS, **env) as server:
        yield server


@pytest.fixture(scope="session", params=MODES)
def open_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Shared by tests that each use organisations of their own; may deliver to loopback receivers.
    Every test that uses it runs in both modes: embedded, and distributed (PostgreSQL, Redis, workers)."""
    yield from _server(
        tmp_path_factory.mktemp(request.param), request.param, HOOKLINE_ALLOW_PRIVATE_TARGETS="true"
    )


@pytest.fixture(scope="session")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Shared, with the default target policy: private and loopback targets refused."""
    yield from _server(tmp_path_factory.mktemp("strict"), "embedded")


@pytest.fixture(params=MODES)
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server with a store of its own, in both modes."""
    yield from _server(tmp_path, request.param, HOOKLINE_ALLOW_PRIVATE_TARGETS="true")


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[Server]:
    """A server with a SQLite store of its own, for tests that look into the store's file."""
    yield from _server(tmp_path, "embedded", HOOKLINE_ALLOW_PRIVATE_TARGETS="true")


@pytest.fixture
def org() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def token_endpoint() -> Iterator[Receiver]:
    """An OAuth2 token endpoint: answers tok-1, tok-2, … (one more per request), valid for an hour."""
    with Receiver() as endpoint:
        endpoint.respond = lambda _: (
            200,
            {"Content-Type": "application/json"},
            json.dumps({"access_token": f"tok-{len(endpoint.requests)}", "expires_in": 3600}),
        )
        yield endpoint


@pytest.fixture
def both(tmp_path: Path) -> Iterator[Opened]:
    """The application and its read model on SQLite in the test's directory (see `tests.apps`)."""
    application = opened(tmp_path)
    yield application
    application.app.close()


@pytest.fixture
def app(both: Opened) -> Hookline:
    return both.app
