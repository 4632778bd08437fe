"""Sends a delivery's HTTP request with aiohttp and describes what happened as an `Attempt`.

The requests go out through `Egress` (connections reused, every target's address checked after DNS
resolution, redirects not followed, the proxy environment ignored, the egress proxy used when set);
timeouts and a read cap bound each attempt. An OAuth2 credential's token comes from `Tokens`, and a
401 from the target is answered once with a new token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from urllib.parse import quote, urlsplit

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from yarl import URL

from domain.credentials import Tls, TokenGrant
from domain.deliveries import MAX_RESPONSE_BODY, Attempt, cap_response_body
from domain.masking import masked_url
from domain.requests import OutgoingRequest
from workers.egress import Egress, TargetRefused, Unresolvable
from workers.tokens import Token, TokenError, Tokens, read_token_response

log = structlog.get_logger("hookline.sender")

MAX_DETAIL = 200  # characters of an exception's message kept in an attempt's error
SHORTEST_SECRET = 4  # header values shorter than this are not looked for in a message


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
        proxy: str | None = None,
        no_proxy: tuple[str, ...] = (),
    ) -> None:
        self.clock = clock
        self.egress = Egress(
            allow_private_targets=allow_private_targets,
            timeout=aiohttp.ClientTimeout(
                total=total_timeout, connect=connect_timeout, sock_connect=connect_timeout
            ),
            connections=connections,
            proxy=proxy,
            no_proxy=no_proxy,
            resolver=resolver,
        )
        self.tokens = Tokens(self._fetch_token)

    async def start(self) -> None:
        await self.egress.start()

    async def close(self) -> None:
        await self.egress.close()

    async def send(self, request: OutgoingRequest, number: int) -> Attempt:
        if not self.egress.started:
            raise RuntimeError("the sender has not been started")
        started_at = self.clock()
        began = time.perf_counter()
        status: int | None = None
        body: str | None = None
        error: str | None = None
        retry_after: str | None = None
        try:
            status, retry_after, raw = await self._exchange(request)
            body = cap_response_body(raw)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TimeoutError:
            error = "timed out"
        except aiohttp.ClientConnectorError as exc:
            error = connect_error(exc)
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {without_secrets(str(exc), request)}"
        except (TargetRefused, Unresolvable, TokenError) as exc:
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

    async def _exchange(self, request: OutgoingRequest) -> tuple[int, str | None, bytes]:
        """The target's status, Retry-After and (capped) body; with a token grant, a 401 is answered
        once more with a new token."""
        grant = request.token_grant
        token = await self.tokens.get(grant) if grant else None
        answer = await self._request(request, token)
        if answer[0] == 401 and grant is not None and token is not None:
            self.tokens.forget(grant, token)
            answer = await self._request(request, await self.tokens.get(grant))
        return answer

    async def _request(self, request: OutgoingRequest, token: str | None) -> tuple[int, str | None, bytes]:
        headers = request.headers
        if token is not None:  # the token wins over an Authorization header of the webhook's own
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {token}"
        async with self.egress.request(
            request.method, request.url, tls=request.tls, headers=headers, data=request.body
        ) as response:
            return response.status, response.headers.get("Retry-After"), await _read_capped(response)

    async def _fetch_token(self, grant: TokenGrant) -> Token:
        """A token from the grant's endpoint (client id and secret in HTTP Basic, form-encoded first as
        RFC 6749 2.3.1 says), through the same egress and checks as a target; failures as TokenError."""
        auth = aiohttp.encode_basic_auth(quote(grant.client_id, safe=""), quote(grant.client_secret, safe=""))
        try:
            async with self.egress.request(
                "POST",
                grant.token_url,
                tls=Tls(ca_bundle_pem=grant.ca_bundle_pem) if grant.ca_bundle_pem else None,
                data=grant.form(),
                headers={"Accept": "application/json", "Authorization": auth},
            ) as response:
                return read_token_response(response.status, await _read_capped(response))
        except TokenError:
            raise
        except TimeoutError:
            raise TokenError("token endpoint: timed out") from None
        except aiohttp.ClientConnectorError as exc:
            raise TokenError(f"token endpoint: {connect_error(exc)}") from None
        except (TargetRefused, Unresolvable) as exc:
            raise TokenError(f"token endpoint: {exc}") from None
        except aiohttp.ClientError as exc:
            raise TokenError(f"token endpoint: {type(exc).__name__}") from None


def connect_error(error: aiohttp.ClientConnectorError) -> str:
    """An attempt's error for a connection that was not made: refused by the target policy, or failed."""
    if isinstance(error.os_error, TargetRefused):
        return str(error.os_error)
    return f"could not connect: {error.os_error.strerror or error}"


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
