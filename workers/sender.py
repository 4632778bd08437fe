"""Sends a delivery's HTTP request with aiohttp and describes what happened as an `Attempt`.

One shared session, so connections to a target are reused. Every connection's address is checked
after DNS resolution (the socket factory sees the real address, IP literals included), redirects are
not followed, the proxy environment is ignored, and timeouts and a read cap bound each attempt.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver
from yarl import URL

from domain.deliveries import MAX_RESPONSE_BODY, Attempt, cap_response_body
from domain.masking import masked_url
from domain.requests import OutgoingRequest
from domain.targets import address_allowed, refusal

log = structlog.get_logger("hookline.sender")

MAX_DETAIL = 200  # characters of an exception's message kept in an attempt's error
SHORTEST_SECRET = 4  # header values shorter than this are not looked for in a message


class TargetRefused(OSError):
    """The target resolved to an address that webhooks may not reach."""


def guarded_socket_factory(allow_private: bool) -> Callable[[AddrInfoType], socket.socket]:
    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = ipaddress.ip_address(sockaddr[0])
        if not address_allowed(address, allow_private=allow_private):
            raise TargetRefused(f"target refused: it resolves to {refusal(address)}")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


class Sender:
    def __init__(
        self,
        *,
        allow_private_targets: bool,
        clock: Callable[[], datetime],
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        connections: int = 256,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow_private_targets = allow_private_targets
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(
            total=total_timeout, connect=connect_timeout, sock_connect=connect_timeout
        )
        self.connections = connections
        self.resolver = resolver  # None: aiohttp's own; tests give one that lies (DNS rebinding)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.connections,
            limit_per_host=0,
            socket_factory=guarded_socket_factory(self.allow_private_targets),
            resolver=self.resolver,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self.timeout, trust_env=False, auto_decompress=True
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: OutgoingRequest, number: int) -> Attempt:
        if self._session is None:
            raise RuntimeError("the sender has not been started")
        started_at = self.clock()
        began = time.perf_counter()
        status: int | None = None
        body: str | None = None
        error: str | None = None
        retry_after: str | None = None
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                body = cap_response_body(await _read_capped(response))
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
        except TimeoutError:
            error = "timed out"
        except aiohttp.ClientConnectorError as exc:
            refused = exc.os_error if isinstance(exc.os_error, TargetRefused) else None
            error = str(refused) if refused else f"could not connect: {exc.os_error.strerror or exc}"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {without_secrets(str(exc), request)}"
        except TargetRefused as exc:
            error = str(exc)
        except Exception as exc:  # e.g. aiohttp refusing a header value or a host name
            # The attempt's error, which the retry schedule follows; raised, the job would rerun forever.
            error = could_not_send(exc, request)
            # (The webhook-id header is the delivery's id; a sendTest's is "test_...".)
            log.warning(
                "the request could not be made", delivery_id=request.headers.get("webhook-id"), error=error
            )
        return Attempt(
            number=number,
            started_at=started_at,
            duration_ms=round((time.perf_counter() - began) * 1000, 3),
            status_code=status,
            error=error,
            response_body=body,
            retry_after=retry_after,
        )


def could_not_send(error: Exception, request: OutgoingRequest) -> str:
    """An attempt's error for a request the HTTP client refused to make."""
    return f"the request could not be made: {type(error).__name__}: {without_secrets(str(error), request)}"


def without_secrets(message: str, request: OutgoingRequest) -> str:
    """The first line of an exception's message, capped, with what of the request may be a secret
    masked or cut out: the error is shown to every role. The URL stays, masked, to say where it went;
    its raw query and the header values are cut out wherever else they appear."""
    secrets = [urlsplit(request.url).query, *request.headers.values()]
    detail = _url_masked(message.split("\n", 1)[0], request.url)
    for secret in sorted((s for s in secrets if len(s) >= SHORTEST_SECRET), key=len, reverse=True):
        detail = detail.replace(secret, "…")
    return detail[:MAX_DETAIL]


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """At most MAX_RESPONSE_BODY bytes; the rest is not read (the connection is dropped instead)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(MAX_RESPONSE_BODY):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BODY:
            response.close()
            break
    return b"".join(chunks)


def _url_masked(text: str, url: str) -> str:
    """An error's text with the target URL's secrets masked: aiohttp's errors name the URL (its query
    included), and an attempt's error is shown to every reader of deliveries."""
    forms = {url}
    with suppress(ValueError, TypeError):
        forms.add(str(URL(url)))  # as aiohttp writes it
    for form in forms:
        text = text.replace(form, masked_url(form))
    return text
