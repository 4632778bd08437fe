"""Which target URLs and addresses a webhook may send to (SSRF policy), as pure functions.

The host of a URL is checked as written (IP literals in every notation, `localhost`), and every address
it resolves to is checked again by the caller, on save and at send time, with `address_allowed`.
An IPv6 address of a form that carries an IPv4 address (mapped, compatible, translated, NAT64, 6to4,
Teredo, ISATAP) is judged by that IPv4 address: it is where the packets end up.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from domain.errors import Problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_OCTAL = re.compile(r"0[0-7]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")

MAX_URL_LENGTH = 2048

# Cloud metadata services that are reachable on addresses some clouds consider ordinary.
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a network's own NAT64 prefixes
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, still routed by some stacks
_ISATAP = 0x0000_5EFE  # RFC 5214: the top of the interface identifier, its u and g bits left out
_LOW32 = 0xFFFF_FFFF


@dataclass(frozen=True)
class Embedded:
    """The IPv4 addresses an IPv6 address carries, and the name of the form that carries them."""

    form: str
    addresses: tuple[ipaddress.IPv4Address, ...]


def embedded_ipv4(address: ipaddress.IPv6Address) -> Embedded | None:
    """The IPv4 address inside an IPv6 address of a form that reaches it, or None for plain IPv6.

    A local-use NAT64 address gives every address it may carry, one per RFC 6052 prefix length
    (its network chooses which). A Teredo address gives its client, then its server.
    """
    value = int(address)
    low = ipaddress.IPv4Address(value & _LOW32)
    if address.ipv4_mapped is not None:
        return Embedded("IPv4-mapped", (address.ipv4_mapped,))
    if address in _TRANSLATED:
        return Embedded("IPv4-translated", (low,))
    if address in _COMPATIBLE and value > 1:  # :: and ::1 are IPv6's own unspecified and loopback
        return Embedded("IPv4-compatible", (low,))
    if address in _NAT64:
        return Embedded("NAT64", (low,))
    if address in _NAT64_LOCAL:
        candidates = (_rfc6052(value, length) for length in (96, 64, 56, 48))  # /96 the usual
        return Embedded("local-use NAT64", tuple(dict.fromkeys(candidates)))
    if address.sixtofour is not None:
        return Embedded("6to4", (address.sixtofour,))
    if address.teredo is not None:
        server, client = address.teredo
        return Embedded("Teredo", (client, server))
    if (value >> 32) & 0xFCFF_FFFF == _ISATAP:
        return Embedded("ISATAP", (low,))
    return None


def _rfc6052(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address after an RFC 6052 prefix of this length: bits 64 to 71 are never used."""
    if prefix_length == 96:
        return ipaddress.IPv4Address(value & _LOW32)
    without_u = (value >> 64) << 56 | value & (2**56 - 1)  # 120 bits
    return ipaddress.IPv4Address(without_u >> (120 - prefix_length - 32) & _LOW32)


def address_allowed(address: IPAddress, *, allow_private: bool) -> bool:
    """A public unicast address; or, with `allow_private`, anything but a metadata service.

    An IPv6 address that carries an IPv4 one is judged by it; a local-use NAT64 address, whose
    network decides which IPv4 address it means, only with `allow_private`.
    """
    address = _unscoped(address)
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if embedded is None:
        return _plain_allowed(address, allow_private)
    if embedded.form == "local-use NAT64" and not allow_private:
        return False
    if embedded.form == "ISATAP" and not _plain_allowed(address, allow_private):
        return False  # its prefix is an ordinary one, which must be allowed too
    return all(_plain_allowed(inner, allow_private) for inner in embedded.addresses)


def _plain_allowed(address: IPAddress, allow_private: bool) -> bool:
    if address in _METADATA:
        return False
    if allow_private:
        return not address.is_multicast
    return address.is_global and not address.is_multicast


def _unscoped(address: IPAddress) -> IPAddress:
    """Without its zone (`fe80::1%eth0`): a zone would make `fd00:ec2::254%1` unequal to the metadata
    address."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return ipaddress.IPv6Address(int(address))
    return address


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


def split_target(url: str, field: str = "targetUrl") -> tuple[SplitResult | None, list[Problem]]:
    """Parse a target URL (or a token URL); problems name `field`."""
    problems: list[Problem] = []
    if not url.strip():
        return None, [Problem(field, "must not be empty")]
    if len(url) > MAX_URL_LENGTH:
        return None, [Problem(field, f"must be at most {MAX_URL_LENGTH} characters")]
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None, [Problem(field, "must not contain whitespace or control characters")]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, [Problem(field, "is not a valid URL")]
    if parts.scheme not in ("http", "https"):
        problems.append(Problem(field, "must be an http or https URL"))
    if not parts.hostname:
        problems.append(Problem(field, "must name a host"))
    if parts.username or parts.password:
        problems.append(Problem(field, "must not carry credentials; use a credential instead"))
    if port == 0:
        problems.append(Problem(field, "must not use port 0"))
    return (None if problems else parts), problems


def literal_host_problem(host: str, *, allow_private: bool, field: str = "targetUrl") -> Problem | None:
    """A problem when the host, as written, is a refused address (or `localhost`)."""
    if is_localhost_name(host):
        return None if allow_private else Problem(field, "must not point to a loopback address")
    address = parse_host_address(host)
    if address is not None and not address_allowed(address, allow_private=allow_private):
        return Problem(field, f"must not point to {refusal(address)}")
    return None


def describe(address: IPAddress) -> str:
    """The kind of address: of the IPv4 address it carries, for an IPv6 address that carries one."""
    return _judged(address)[0]


def refusal(address: IPAddress) -> str:
    """What a refused address is, for a message: `a loopback address`; for an IPv6 address that carries
    an IPv4 one, also which and how (`a loopback address (127.0.0.1 inside a NAT64 address)`)."""
    kind, inner, form = _judged(address)
    text = f"{_article(kind)} {kind} address"
    if form is None:
        return text
    where = f"inside {_article(form)} {form} address"
    return f"{text} ({inner} {where})" if inner is not None else f"{text} ({where})"


def _judged(address: IPAddress) -> tuple[str, ipaddress.IPv4Address | None, str | None]:
    """The kind of an address, and the embedded address and form it is judged by (None for a plain one)."""
    address = _unscoped(address)
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if embedded is None:
        return _kind(address), None, None
    inner = embedded.addresses
    refused = [a for a in inner if not _plain_allowed(a, allow_private=False)]
    worst = min(refused, key=lambda a: _SEVERITY.index(_kind(a)), default=None)
    if worst is None and embedded.form == "ISATAP":
        return _kind(address), None, None  # its IPv4 address is public: its prefix decides
    if worst is None and embedded.form == "local-use NAT64":
        return "private", None, embedded.form  # a prefix of the network's own, like a private range
    chosen = worst or inner[0]
    return _kind(chosen), chosen, embedded.form


_SEVERITY = ("cloud metadata", "multicast", "loopback", "link-local", "private", "unspecified", "public")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiouAEIOU" else "a"


def _kind(address: IPAddress) -> str:
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


def proxy_bypassed(host: str, no_proxy: tuple[str, ...]) -> bool:
    """Whether a request to `host` goes direct rather than through the egress proxy: the host is one
    of `no_proxy`, or under a domain in it (`example.com` and `.example.com` both cover
    `api.example.com`); `*` covers every host. Names compare without case or a final dot."""
    host = host.strip("[]").rstrip(".").lower()
    for entry in no_proxy:
        entry = entry.strip().strip("[]").rstrip(".").lower()
        if entry == "*":
            return True
        domain = entry.removeprefix("*").removeprefix(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False
