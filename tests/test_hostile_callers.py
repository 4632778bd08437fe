"""Callers, with or without a key, who try to make the gateway hold memory or answer 500: what they send
costs them a clear 4xx, and `serve` stays the size it was."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.schema import MAX_TOKENS
from tests.support import Server, server_env

COMMENT_BYTES = 8 * 1024 * 1024
REQUESTS = 40
MAX_GROWTH = 50 * 1024 * 1024


@pytest.fixture
def lone_server(tmp_path: Path) -> Iterator[Server]:
    """A `serve` of its own, so that its size is what these requests made it."""
    server = Server(directory=tmp_path, env=server_env())
    try:
        server.start()
        yield server
    finally:
        server.stop()


def rss(server: Server) -> int:
    """The resident size of `serve`, in bytes (VmRSS of /proc/<pid>/status)."""
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def post(
    server: Server, body: bytes, content_type: str = "application/json", key: str | None = None
) -> tuple[int, str, bytes]:
    """One POST /graphql with exactly this body: status, content type and body of the answer."""
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("POST", "/graphql", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        connection.close()


def commented_typename(size: int) -> bytes:
    """`{ __typename }` and a comment of `size` bytes that no other request repeats."""
    comment = "#" + uuid.uuid4().hex + "x" * size
    return json.dumps({"query": "{ __typename }" + comment}).encode()


def growth_after_commented_requests(server: Server, key: str | None) -> tuple[int, list[bytes]]:
    for _ in range(5):  # the first requests warm the process up: imports, pools, caches of code
        post(server, commented_typename(1024), key=key)
    before = rss(server)
    answers = []
    for _ in range(REQUESTS):
        status, _, raw = post(server, commented_typename(COMMENT_BYTES), key=key)
        assert status < 500, (status, raw[:300])
        answers.append(raw)
    return rss(server) - before, answers


# -- 1. memory pinned by the parsed-document cache ---------------------------------------------------


def test_forty_keyless_requests_with_8_mb_comments_leave_serve_less_than_50_mb_bigger(
    lone_server: Server,
) -> None:
    growth, answers = growth_after_commented_requests(lone_server, key=None)

    print(f"serve grew {growth / 2**20:.1f} MiB after {REQUESTS} key-less 8 MB comments")
    assert growth < MAX_GROWTH, f"serve grew {growth / 2**20:.0f} MiB"
    for raw in answers:
        answer = json.loads(raw)
        assert answer["data"] is None, answer
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["UNAUTHENTICATED"], answer


def test_forty_keyed_requests_with_8_mb_comments_leave_serve_less_than_50_mb_bigger(
    lone_server: Server,
) -> None:
    key = lone_server.key(f"memory-{uuid.uuid4().hex[:8]}", "viewer")

    growth, answers = growth_after_commented_requests(lone_server, key=key)

    print(f"serve grew {growth / 2**20:.1f} MiB after {REQUESTS} keyed 8 MB comments")
    assert growth < MAX_GROWTH, f"serve grew {growth / 2**20:.0f} MiB"
    assert all(json.loads(raw) == {"data": {"__typename": "Query"}} for raw in answers)


def test_a_hundred_keyed_documents_of_5000_tokens_leave_serve_less_than_50_mb_bigger(
    lone_server: Server,
) -> None:
    """Short texts, large parsed forms: the cache weighs what a document holds, not its length."""
    key = lone_server.key(f"memory-{uuid.uuid4().hex[:8]}", "publisher")

    def heavy() -> bytes:  # ~4 800 tokens in 7 KiB, each document new, each valid
        payload = "{a: [" + ",".join(["[]"] * (MAX_TOKENS // 2 - 100)) + "]}"
        publication = f'{{type: "m{uuid.uuid4().hex}", payload: {payload}}}'
        query = f"mutation {{ publishEvent(input: {publication}) {{ duplicate }} }}"
        return json.dumps({"query": query}).encode()

    for _ in range(5):
        post(lone_server, heavy(), key=key)
    before = rss(lone_server)
    for _ in range(100):
        status, _, raw = post(lone_server, heavy(), key=key)
        assert (status, json.loads(raw)) == (200, {"data": {"publishEvent": {"duplicate": False}}}), raw[:300]
    growth = rss(lone_server) - before

    print(f"serve grew {growth / 2**20:.1f} MiB after 100 documents of ~4 800 tokens")
    assert growth < MAX_GROWTH, f"serve grew {growth / 2**20:.0f} MiB"


# -- 8. JSON under another name, nested too deep ------------------------------------------------------

DEPTH = 200_000


def deep_variables(depth: int) -> bytes:
    return b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * depth + b"]" * depth + b"}}"


def assert_bad_user_input(status: int, content_type: str, raw: bytes) -> None:
    assert 400 <= status < 500, (status, raw[:300])
    assert content_type.startswith("application/json"), (content_type, raw[:300])
    answer = json.loads(raw)
    assert answer["data"] is None, answer
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], answer
    assert all(e["extensions"]["fields"] for e in answer["errors"]), answer


@pytest.mark.parametrize(
    "content_type",
    [
        "application/jsonx",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json-patch+json",
        "application/graphql+json",
        "application/graphql-response+json",
        "text/json",
        "text/plain",
        "x-application/json",
    ],
)
def test_a_body_nested_200000_deep_is_a_4xx_whatever_its_content_type(
    strict_server: Server, org: str, content_type: str
) -> None:
    key = strict_server.key(org, "viewer")

    status, answered_as, raw = post(strict_server, deep_variables(DEPTH), content_type, key=key)

    assert_bad_user_input(status, answered_as, raw)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_a_json_body_under_either_spelling_is_served(
    strict_server: Server, org: str, content_type: str
) -> None:
    key = strict_server.key(org, "viewer")

    status, _, raw = post(
        strict_server, json.dumps({"query": "{ __typename }"}).encode(), content_type, key=key
    )

    assert (status, json.loads(raw)) == (200, {"data": {"__typename": "Query"}})


def test_variables_nested_too_deep_in_a_get_query_are_a_4xx(strict_server: Server, org: str) -> None:
    key = strict_server.key(org, "viewer")
    variables = "[" * 5000 + "]" * 5000  # deeper than the standard parser's recursion allows
    connection = http.client.HTTPConnection("127.0.0.1", strict_server.port, timeout=30)
    try:
        connection.request(
            "GET",
            f"/graphql?query=%7B__typename%7D&variables={variables}",
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
        )
        response = connection.getresponse()
        status, content_type, raw = response.status, response.getheader("content-type", ""), response.read()
    finally:
        connection.close()

    assert_bad_user_input(status, content_type, raw)


def test_a_websocket_message_nested_200000_deep_closes_the_socket_with_4400(
    strict_server: Server, org: str
) -> None:
    key = strict_server.key(org, "viewer")
    url = strict_server.url.replace("http", "ws", 1) + "/graphql"
    nested = "[" * DEPTH + "]" * DEPTH
    message = '{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", "variables": {"a": '

    async def close_code(text: str) -> int | None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url, protocols=["graphql-transport-ws"], timeout=aiohttp.ClientWSTimeout(10)
            ) as ws,
        ):
            await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
            assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
            await ws.send_str(text)
            answer = await ws.receive(timeout=10)
            if answer.type == aiohttp.WSMsgType.TEXT:
                assert json.loads(answer.data)["type"] == "next", answer.data
                return None
            return ws.close_code

    assert asyncio.run(close_code(message + nested + "}}}")) == 4400
    assert asyncio.run(close_code(message + "[]}}}")) is None  # the same socket route serves what parses
