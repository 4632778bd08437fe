"""A request the HTTP client refuses to make is a failed attempt like any other: it follows the retry
schedule, the delivery ends FAILED, the error is logged once an attempt, and nothing is retried forever.

Through a real `hookline serve` (and, distributed, its workers) with a real receiver.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, webhook_input
from tests.support import Receiver, Server, running_server, wait_until

SCHEDULE = "0.2,0.2"  # three attempts in all
ATTEMPTS = 3
# A host name with an empty label: a valid URL that the IDNA codec refuses to encode, so aiohttp raises
# a UnicodeError (a ValueError) at send time rather than a ClientError.
REFUSED_URL = "http://hooks..example.com/incoming"
SEND_TEST = """
mutation($id: ID!) { sendTest(webhookId: $id) { success statusCode errors } }
"""
REFUSED = "the request could not be made: UnicodeError"
INFO = '"level": "info"'  # (arq logs each job's start and end)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def retrying_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"HOOKLINE_ALLOW_PRIVATE_TARGETS": "true", "HOOKLINE_RETRY_SCHEDULE": SCHEDULE}
    directory = tmp_path_factory.mktemp(f"unmade-{request.param}")
    with running_server(directory, request.param, workers=2, **env) as server:  # (sweeps every second)
        yield server


def keys(server: Server) -> tuple[str, str]:
    name = f"unmade-{uuid.uuid4().hex[:12]}"
    return server.key(name, "admin"), server.key(name, "publisher")


def webhook(server: Server, admin: str, url: str) -> str:
    created = server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(url, eventTypes=["unmade.event"])})
    return str(created.ok()["createWebhook"]["id"])


def the_delivery(server: Server, admin: str, webhook_id: str) -> dict[str, Any] | None:
    edges = server.gql(admin, DELIVERIES, {"webhookId": webhook_id}).ok()["deliveries"]["edges"]
    return dict(edges[0]["node"]) if edges else None


def logs(server: Server) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted(server.directory.glob("*.log")))


def test_a_request_the_http_client_refuses_fails_its_attempts_and_the_delivery_ends_failed(
    retrying_server: Server, receiver: Receiver
) -> None:
    server = retrying_server
    admin, publisher = keys(server)
    refused = webhook(server, admin, REFUSED_URL)
    webhook(server, admin, receiver.url + "/fine")

    server.gql(publisher, PUBLISH, {"input": {"type": "unmade.event", "payload": {"n": 1}}}).ok()
    receiver.wait_for(1)

    def failed() -> dict[str, Any] | None:
        delivery = the_delivery(server, admin, refused)
        return delivery if delivery and delivery["status"] == "FAILED" else None

    try:
        delivery = wait_until(failed, timeout=15, interval=0.2)
    except AssertionError:
        raise AssertionError(f"the delivery never ended: {the_delivery(server, admin, refused)}") from None
    time.sleep(3)  # a few sweeps: nothing runs it again

    after = the_delivery(server, admin, refused)
    assert after == delivery
    attempts = delivery["attempts"]
    assert [a["number"] for a in attempts] == list(range(1, ATTEMPTS + 1))
    for attempt in attempts:
        assert attempt["statusCode"] is None
        assert attempt["error"].startswith(REFUSED), attempt
        assert "hooks..example.com" not in attempt["error"]  # the URL is not repeated in the error
    assert delivery["nextAttemptAt"] is None
    logged = [line for line in logs(server).splitlines() if delivery["id"] in line and INFO not in line]
    assert len(logged) == ATTEMPTS, logged  # once an attempt, with the delivery's id
    assert all("the request could not be made" in line for line in logged)
    assert len(receiver.requests) == 1


def test_send_test_of_a_request_the_http_client_refuses_answers_with_the_error(
    retrying_server: Server,
) -> None:
    admin, _ = keys(retrying_server)
    refused = webhook(retrying_server, admin, REFUSED_URL)

    result = retrying_server.gql(admin, SEND_TEST, {"id": refused})

    answer = result.ok()["sendTest"]
    assert answer["success"] is False
    assert answer["statusCode"] is None
    [error] = answer["errors"]
    assert error.startswith(REFUSED)
