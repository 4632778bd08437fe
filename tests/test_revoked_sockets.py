"""A key revoked while a websocket (graphql-transport-ws) is open stops working on that socket too: the
socket is closed with 4403 within 5 s even when it sits idle, and what the key sends over it once the key
is refused changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import aiohttp

from tests.queries import CREATE_WEBHOOK, SET_ACTIVE, WEBHOOK, webhook_input
from tests.support import Server, wait_until

SUBSCRIBE = 'subscription { deliveryUpdates(after: "0") { cursor deliveryId status } }'
WITHIN = 5.0


def key_id(key: str) -> str:
    """The id `hookline keys list` shows for a key: the UUID in `hkl_<32 hex>_<secret>`."""
    return str(uuid.UUID(key.split("_")[1]))


async def open_socket(
    session: aiohttp.ClientSession, server: Server, key: str
) -> aiohttp.ClientWebSocketResponse:
    url = server.url.replace("http", "ws", 1) + "/graphql"
    ws = await session.ws_connect(
        url, protocols=["graphql-transport-ws"], timeout=aiohttp.ClientWSTimeout(10)
    )
    await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
    ack = await ws.receive_json(timeout=10)
    assert ack["type"] == "connection_ack", ack
    return ws


async def next_message(ws: aiohttp.ClientWebSocketResponse, within: float) -> dict[str, Any] | None:
    """The next protocol message (pings answered), {"type": "closed", "code": …} once the server closed
    the socket, None when nothing came within `within` seconds."""
    deadline = time.monotonic() + within
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=remaining)
        except TimeoutError:
            return None
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return {"type": "closed", "code": ws.close_code}
        if message.type == aiohttp.WSMsgType.ERROR:
            return {"type": "closed", "code": ws.close_code, "error": str(message.data)}
        data: dict[str, Any] = json.loads(message.data)
        if data["type"] == "ping":
            await ws.send_json({"type": "pong"})
        elif data["type"] != "pong":
            return data
    return None


async def closed_with(ws: aiohttp.ClientWebSocketResponse, within: float) -> int | None:
    """The close code, once the server closes the socket within `within` seconds (messages skipped)."""
    deadline = time.monotonic() + within
    while (message := await next_message(ws, deadline - time.monotonic())) is not None:
        if message["type"] == "closed":
            return int(message["code"]) if message["code"] is not None else None
    return None


def test_a_revoked_keys_idle_socket_is_closed_with_4403_within_5_seconds(
    open_server: Server, org: str
) -> None:
    admin = open_server.key(org, "admin")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            idle = await open_socket(session, open_server, admin)
            following = await open_socket(session, open_server, admin)
            await following.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
            assert await next_message(idle, 1.0) is None, "an idle socket got something"

            revoked = await asyncio.to_thread(open_server.cli, "keys", "revoke", key_id(admin))
            assert revoked.returncode == 0, revoked.stderr
            started = time.monotonic()
            codes = list(await asyncio.gather(closed_with(idle, WITHIN), closed_with(following, WITHIN)))

            assert codes == [4403, 4403], f"close codes {codes} within {time.monotonic() - started:.1f} s"
            print(f"closed after {time.monotonic() - started:.2f} s")
            assert time.monotonic() - started <= WITHIN

    asyncio.run(scenario())


def test_a_revoked_key_cannot_mutate_over_an_open_socket(open_server: Server, org: str) -> None:
    doomed = open_server.key(org, "admin")
    other = open_server.key(org, "admin")
    webhook = open_server.gql(
        other, CREATE_WEBHOOK, {"input": webhook_input("https://example.com/hook")}
    ).ok()["createWebhook"]

    async def scenario() -> dict[str, Any] | None:
        async with aiohttp.ClientSession() as session:
            ws = await open_socket(session, open_server, doomed)
            revoked = await asyncio.to_thread(open_server.cli, "keys", "revoke", key_id(doomed))
            assert revoked.returncode == 0, revoked.stderr
            # Once the key is refused over HTTP, no cache anywhere holds it: the socket must refuse it too.
            await asyncio.to_thread(
                wait_until,
                lambda: open_server.gql(doomed, WEBHOOK, {"id": webhook["id"]}).codes == ["UNAUTHENTICATED"],
                6.0,
                0.1,
            )
            mutation = {"query": SET_ACTIVE, "variables": {"id": webhook["id"], "active": False}}
            with contextlib.suppress(ConnectionError):  # the server may have closed it already
                await ws.send_json({"id": "2", "type": "subscribe", "payload": mutation})
            return await next_message(ws, WITHIN)

    answer = asyncio.run(scenario())

    assert answer is not None, "the socket neither answered nor closed"
    if answer["type"] == "closed":
        assert answer["code"] == 4403, answer
    else:  # answered instead of closed: refused
        assert answer["type"] in ("error", "next"), answer
        errors = answer["payload"] if answer["type"] == "error" else answer["payload"].get("errors")
        assert errors, answer
        assert {e.get("extensions", {}).get("code") for e in errors} == {"UNAUTHENTICATED"}, answer
    after = open_server.gql(other, WEBHOOK, {"id": webhook["id"]}).ok()["webhook"]
    assert (after["active"], after["version"]) == (True, webhook["version"]), after
