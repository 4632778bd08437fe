"""Which target URLs and addresses a webhook may send to (SSRF policy), as pure functions.

The host of a URL is checked as written (IP literals in every notation, `localhost`), and every address
it resolves to is checked again by the caller, on save and at send time, with `address_allowed`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from domain.errors import Problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_OCTAL = re.compile(r"0[0-7]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")

MAX_URL_LENGTH = 2048

# Cloud metadata services that are reachable on addresses some clouds consider ordinary.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}


def address_allowed(address: IPAddress, *, allow_private: bool) -> bool:
    """A public unicast address; or, with `allow_private`, anything but a metadata service."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return address_allowed(mapped, allow_private=allow_private)
    if address in _METADATA:
        return False
    if allow_private:
        return not address.is_multicast
    return address.is_global and not address.is_multicast


def parse_host_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any notation a resolver accepts, or None for a name.

    Besides dotted quads this reads the forms inet_aton accepts (`2130706433`, `0x7f000001`,
    `0177.0.0.1`, `127.1`), which a naive check would take for a name.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        # Only the ASCII forms inet_aton reads: 0x1F (hex), 017 (octal), 15 (decimal).
        if _HEX.fullmatch(part):
            numbers.append(int(part[2:], 16))
        elif _OCTAL.fullmatch(part):
            numbers.append(int(part, 8))
        elif _DECIMAL.fullmatch(part):
            numbers.append(int(part, 10))
        else:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def is_localhost_name(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


def split_target(url: str) -> tuple[SplitResult | None, list[Problem]]:
    """Parse a target URL; problems name the `targetUrl` field."""
    problems: list[Problem] = []
    if not url.strip():
        return None, [Problem("targetUrl", "must not be empty")]
    if len(url) > MAX_URL_LENGTH:
        return None, [Problem("targetUrl", f"must be at most {MAX_URL_LENGTH} characters")]
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None, [Problem("targetUrl", "must not contain whitespace or control characters")]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, [Problem("targetUrl", "is not a valid URL")]
    if parts.scheme not in ("http", "https"):
        problems.append(Problem("targetUrl", "must be an http or https URL"))
    if not parts.hostname:
        problems.append(Problem("targetUrl", "must name a host"))
    if parts.username or parts.password:
        problems.append(Problem("targetUrl", "must not carry credentials; use a credential instead"))
    if port == 0:
        problems.append(Problem("targetUrl", "must not use port 0"))
    return (None if problems else parts), problems


def literal_host_problem(host: str, *, allow_private: bool) -> Problem | None:
    """A problem when the host, as written, is a refused address (or `localhost`)."""
    if is_localhost_name(host):
        return None if allow_private else Problem("targetUrl", "must not point to a loopback address")
    address = parse_host_address(host)
    if address is not None and not address_allowed(address, allow_private=allow_private):
        return Problem("targetUrl", f"must not point to a {describe(address)} address")
    return None


def describe(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return describe(address.ipv4_mapped)
    if address in _METADATA:
        return "cloud metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private or not address.is_global:
        return "private"
    return "public"
