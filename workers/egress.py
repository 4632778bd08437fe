"""The way out of Hookline for every target and token request: direct, or through the egress proxy.

Direct connections are checked as they are made (the socket factory sees the real address, IP
literals included). Through the proxy, the connection is to the proxy, which Hookline's operator
chose, so it is not checked; the target's host is resolved here and every address it resolves to is
checked first instead (the proxy resolves it again: a name that changes its answer in between is the
proxy's to refuse). A credential's client certificate and private CA live in a TLS context of their
own, one per credential value, so that no other target trusts that CA.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from domain.credentials import Tls
from domain.targets import IPAddress, address_allowed, parse_host_address, proxy_bypassed, refusal


class TargetRefused(OSError):
    """The target resolved to an address that webhooks may not reach."""


class Unresolvable(OSError):
    """The target's name could not be resolved (checked before a request through the proxy)."""


def guarded_socket_factory(allow_private: bool) -> Callable[[AddrInfoType], socket.socket]:
    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        check_address(ipaddress.ip_address(sockaddr[0]), allow_private)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def check_address(address: IPAddress, allow_private: bool) -> None:
    if not address_allowed(address, allow_private=allow_private):
        raise TargetRefused(f"target refused: it resolves to {refusal(address)}")


class Egress:
    def __init__(
        self,
        *,
        allow_private_targets: bool,
        timeout: aiohttp.ClientTimeout,
        connections: int,
        proxy: str | None = None,
        no_proxy: tuple[str, ...] = (),
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow_private_targets = allow_private_targets
        self.timeout = timeout
        self.connections = connections
        self.proxy = proxy
        self.no_proxy = no_proxy
        self.resolver = resolver  # None: aiohttp's own; tests give one that lies (DNS rebinding)
        self._direct: aiohttp.ClientSession | None = None
        self._proxied: aiohttp.ClientSession | None = None
        self._contexts: dict[Tls, ssl.SSLContext] = {}
        self._own_resolver: AbstractResolver | None = None  # made here for the proxy's checks: closed here

    @property
    def started(self) -> bool:
        return self._direct is not None

    async def start(self) -> None:
        direct = aiohttp.TCPConnector(
            limit=self.connections,
            limit_per_host=0,
            socket_factory=guarded_socket_factory(self.allow_private_targets),
            resolver=self.resolver,
        )
        self._direct = self._session(direct)
        if self.proxy:
            if self.resolver is None:
                self.resolver = self._own_resolver = DefaultResolver()
            self._proxied = self._session(aiohttp.TCPConnector(limit=self.connections, limit_per_host=0))

    def _session(self, connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector, timeout=self.timeout, trust_env=False, auto_decompress=True
        )

    async def close(self) -> None:
        for session in (self._direct, self._proxied):
            if session is not None:
                await session.close()
        self._direct = self._proxied = None
        if self._own_resolver is not None:
            await self._own_resolver.close()
            self.resolver = self._own_resolver = None

    def request(
        self, method: str, url: str, *, tls: Tls | None, **kwargs: Any
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """One request, redirects not followed; raises TargetRefused, Unresolvable or aiohttp's errors.
        A direct one is aiohttp's own context manager, with nothing wrapped around it."""
        if self._direct is None:
            raise RuntimeError("the sender has not been started")
        ssl_context = self._ssl(tls) if tls is not None else True
        if self._proxied is not None:
            host = urlsplit(url).hostname or ""
            if not proxy_bypassed(host, self.no_proxy):
                return self._through_proxy(host, method, url, ssl=ssl_context, **kwargs)
        return self._direct.request(method, url, ssl=ssl_context, allow_redirects=False, **kwargs)

    @asynccontextmanager
    async def _through_proxy(
        self, host: str, method: str, url: str, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        assert self._proxied is not None
        await self._check_resolved(host)
        async with self._proxied.request(
            method, url, proxy=self.proxy, allow_redirects=False, **kwargs
        ) as response:
            yield response

    async def _check_resolved(self, host: str) -> None:
        literal = parse_host_address(host)
        if literal is not None:
            check_address(literal, self.allow_private_targets)
            return
        assert self.resolver is not None
        try:
            answers = await self.resolver.resolve(host, 0, socket.AF_UNSPEC)
        except OSError as error:
            raise Unresolvable(f"could not connect: {host} could not be resolved") from error
        for answer in answers:
            check_address(ipaddress.ip_address(answer["host"]), self.allow_private_targets)

    def _ssl(self, tls: Tls) -> ssl.SSLContext:
        context = self._contexts.get(tls)
        if context is None:
            context = self._contexts[tls] = tls_context(tls)
        return context


def tls_context(tls: Tls) -> ssl.SSLContext:
    """The system's trust, plus the credential's CA; its client certificate and key presented."""
    context = ssl.create_default_context()
    if tls.ca_bundle_pem:
        context.load_verify_locations(cadata=tls.ca_bundle_pem)
    if tls.certificate_pem and tls.private_key_pem:
        _load_client_certificate(context, tls.certificate_pem + "\n" + tls.private_key_pem)
    return context


def _load_client_certificate(context: ssl.SSLContext, pem: str) -> None:
    """`load_cert_chain` reads only files: an anonymous in-memory file where there is one (Linux), so
    that the key never touches a disk; else a private temporary file, removed at once."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("hookline-client-certificate")
        try:
            os.write(fd, pem.encode())
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as directory:  # mode 0700
        path = Path(directory) / "client.pem"
        path.write_text(pem)
        context.load_cert_chain(path)
