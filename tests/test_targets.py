"""The SSRF policy (domain/targets.py) and Standard Webhooks signing (domain/signing.py), without a server."""

from __future__ import annotations

import base64
import ipaddress
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from domain.signing import new_signing_secret, signature, signature_header
from domain.targets import address_allowed, describe, embedded_ipv4, parse_host_address, refusal, split_target

# -- parse_host_address -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("127.0.0.1", "127.0.0.1", id="dotted-quad"),
        pytest.param("::1", "::1", id="ipv6-loopback"),
        pytest.param("[::1]", "::1", id="ipv6-loopback-in-brackets"),
        pytest.param("0x7f000001", "127.0.0.1", id="hexadecimal-integer"),
        pytest.param("0X7F000001", "127.0.0.1", id="hexadecimal-integer-upper-case"),
        pytest.param("2130706433", "127.0.0.1", id="decimal-integer"),
        pytest.param("0177.0.0.1", "127.0.0.1", id="octal-first-part"),
        pytest.param("00000177.0.0.1", "127.0.0.1", id="octal-with-many-leading-zeros"),
        pytest.param("127.1", "127.0.0.1", id="two-parts"),
        pytest.param("127.0.1", "127.0.0.1", id="three-parts"),
        pytest.param("0x7f.1", "127.0.0.1", id="hexadecimal-two-parts"),
        pytest.param("1.16777215", "1.255.255.255", id="two-parts-with-a-24-bit-tail"),
        pytest.param("4294967295", "255.255.255.255", id="largest-decimal-integer"),
        pytest.param("10.0.0.5", "10.0.0.5", id="private-10"),
        pytest.param("192.168.1.1", "192.168.1.1", id="private-192-168"),
        pytest.param("172.16.0.1", "172.16.0.1", id="private-172-16"),
        pytest.param("169.254.169.254", "169.254.169.254", id="metadata"),
        pytest.param("fd00:ec2::254", "fd00:ec2::254", id="ipv6-metadata"),
        pytest.param("[fd00:ec2::254]", "fd00:ec2::254", id="ipv6-metadata-in-brackets"),
        pytest.param("0.0.0.0", "0.0.0.0", id="unspecified"),
        pytest.param("0", "0.0.0.0", id="unspecified-as-one-number"),
        pytest.param("::ffff:127.0.0.1", "::ffff:7f00:1", id="ipv4-mapped-ipv6"),
        pytest.param("[::ffff:127.0.0.1]", "::ffff:7f00:1", id="ipv4-mapped-ipv6-in-brackets"),
        pytest.param("93.184.215.14", "93.184.215.14", id="public"),
    ],
)
def test_a_host_written_as_an_address_in_any_resolver_notation_is_read_as_that_address(
    host: str, expected: str
) -> None:
    assert parse_host_address(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("example.com", id="domain-name"),
        pytest.param("localhost", id="localhost"),
        pytest.param("sub.localhost", id="localhost-subdomain"),
        pytest.param("1.2.3.4.5", id="five-parts"),
        pytest.param("256.0.0.1", id="part-over-255"),
        pytest.param("1.2.3.256", id="last-part-over-255"),
        pytest.param("1.16777216", id="two-parts-with-a-tail-over-24-bits"),
        pytest.param("4294967296", id="integer-over-32-bits"),
        pytest.param("08.0.0.1", id="invalid-octal"),
        pytest.param("0x100.0.0.1", id="hexadecimal-part-over-255"),
        pytest.param("127.0.0.1.", id="trailing-dot"),
        pytest.param("1e3", id="exponent"),
        pytest.param("", id="empty"),
    ],
)
def test_a_host_that_is_a_name_and_not_an_address_gives_none(host: str) -> None:
    assert parse_host_address(host) is None


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("-1", id="negative-integer"),
        pytest.param("-1.0.0.1", id="negative-first-part"),
        pytest.param("1.-1", id="negative-last-part"),
        pytest.param("+127.0.0.1", id="plus-sign"),
        pytest.param("1_000", id="digit-group-underscores"),
        pytest.param("0x", id="hexadecimal-prefix-without-digits"),
        pytest.param("\u0661\u0662\u0667.0.0.1", id="arabic-indic-digits"),
    ],
)
def test_a_number_no_resolver_reads_as_an_address_gives_none_instead_of_failing(host: str) -> None:
    """inet_aton (and so getaddrinfo) takes each of these for a name: they are not addresses."""
    assert parse_host_address(host) is None


# -- address_allowed ----------------------------------------------------------------------------------

PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07:6820:80da:af6b:c3c6"]
PRIVATE = [
    "10.0.0.5",
    "192.168.1.1",
    "172.16.0.1",
    "172.31.255.254",
    "100.64.0.1",  # carrier-grade NAT
    "fd12:3456::1",  # unique local
    "fc00::1",
]
LOOPBACK = ["127.0.0.1", "127.255.255.254", "::1"]
LINK_LOCAL = ["169.254.1.1", "fe80::1"]
UNSPECIFIED = ["0.0.0.0", "::"]
METADATA = ["169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"]
MAPPED = ["::ffff:127.0.0.1", "::ffff:10.0.0.5", "::ffff:169.254.1.1"]
MAPPED_METADATA = ["::ffff:169.254.169.254", "2002:a9fe:a9fe::"]  # IPv4-mapped and 6to4
SIX_TO_FOUR_LOOPBACK = ["2002:7f00:1::"]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_is_allowed_with_or_without_private_targets(address: str) -> None:
    assert address_allowed(_address(address), allow_private=False)
    assert address_allowed(_address(address), allow_private=True)


@pytest.mark.parametrize("address", ["::ffff:93.184.215.14"])
def test_a_public_ipv4_address_mapped_into_ipv6_is_allowed(address: str) -> None:
    assert address_allowed(_address(address), allow_private=False)


@pytest.mark.parametrize(
    "address", PRIVATE + LOOPBACK + LINK_LOCAL + UNSPECIFIED + MAPPED + SIX_TO_FOUR_LOOPBACK
)
def test_a_private_loopback_link_local_or_mapped_one_is_refused_by_default(address: str) -> None:
    assert not address_allowed(_address(address), allow_private=False)


@pytest.mark.parametrize("address", PRIVATE + LOOPBACK + LINK_LOCAL + MAPPED + SIX_TO_FOUR_LOOPBACK)
def test_a_private_loopback_link_local_or_mapped_one_is_allowed_with_private_targets(address: str) -> None:
    assert address_allowed(_address(address), allow_private=True)


@pytest.mark.parametrize("address", METADATA + MAPPED_METADATA)
def test_a_metadata_service_address_stays_refused_even_with_private_targets(address: str) -> None:
    assert not address_allowed(_address(address), allow_private=False)
    assert not address_allowed(_address(address), allow_private=True)


@pytest.mark.parametrize("address", ["224.0.0.1", "ff02::1"])
def test_a_multicast_address_is_refused_even_with_private_targets(address: str) -> None:
    assert not address_allowed(_address(address), allow_private=False)
    assert not address_allowed(_address(address), allow_private=True)


# -- IPv6 addresses that carry an IPv4 address ------------------------------------------------------

# address, allowed by default, allowed with private targets, what describe() calls it
EMBEDDED = [
    pytest.param("::ffff:127.0.0.1", False, True, "loopback", id="mapped-loopback"),
    pytest.param("::ffff:8.8.8.8", True, True, "public", id="mapped-public"),
    pytest.param("::127.0.0.1", False, True, "loopback", id="compatible-loopback"),
    pytest.param("::10.0.0.5", False, True, "private", id="compatible-private"),
    pytest.param("::169.254.169.254", False, False, "cloud metadata", id="compatible-metadata"),
    pytest.param("::8.8.8.8", True, True, "public", id="compatible-public"),
    pytest.param("::ffff:0:127.0.0.1", False, True, "loopback", id="translated-loopback"),
    pytest.param("::ffff:0:192.168.1.1", False, True, "private", id="translated-private"),
    pytest.param("::ffff:0:8.8.8.8", True, True, "public", id="translated-public"),
    pytest.param("64:ff9b::127.0.0.1", False, True, "loopback", id="nat64-loopback"),
    pytest.param("64:ff9b::10.0.0.5", False, True, "private", id="nat64-private"),
    pytest.param("64:ff9b::169.254.169.254", False, False, "cloud metadata", id="nat64-metadata"),
    pytest.param("64:ff9b::8.8.8.8", True, True, "public", id="nat64-public"),
    pytest.param("64:ff9b:1::10.0.0.5", False, True, "private", id="local-nat64-private-as-96"),
    pytest.param("64:ff9b:1:7f00:0:100::", False, True, "loopback", id="local-nat64-loopback-as-48"),
    pytest.param("64:ff9b:1:0:8:808:800:0", False, True, "private", id="local-nat64-public-as-64"),
    pytest.param("64:ff9b:1:a9fe:a9:fe00::", False, False, "cloud metadata", id="local-nat64-metadata-as-48"),
    pytest.param(
        "64:ff9b:1::169.254.169.254", False, False, "cloud metadata", id="local-nat64-metadata-as-96"
    ),
    pytest.param("2002:7f00:1::", False, True, "loopback", id="6to4-loopback"),
    pytest.param("2002:c0a8:101::1", False, True, "private", id="6to4-private"),
    pytest.param("2002:a9fe:a9fe::", False, False, "cloud metadata", id="6to4-metadata"),
    pytest.param("2002:808:808::1", True, True, "public", id="6to4-public"),
    # Teredo: the client's address is the last 32 bits inverted; 7f.00.00.01 is 80ff:fffe.
    pytest.param("2001:0:4136:e378:8000:63bf:80ff:fffe", False, True, "loopback", id="teredo-loopback"),
    pytest.param("2001:0:4136:e378:8000:63bf:f5ff:fffa", False, True, "private", id="teredo-private"),
    pytest.param(
        "2001:0:4136:e378:8000:63bf:5601:5601", False, False, "cloud metadata", id="teredo-metadata"
    ),
    pytest.param("2001:0:4136:e378:8000:63bf:f7f7:f7f7", True, True, "public", id="teredo-public"),
    pytest.param("2001:0:7f00:1:8000:63bf:f7f7:f7f7", False, True, "loopback", id="teredo-loopback-server"),
    pytest.param("2600::5efe:10.0.0.5", False, True, "private", id="isatap-private"),
    pytest.param("2600::200:5efe:127.0.0.1", False, True, "loopback", id="isatap-global-bit-loopback"),
    pytest.param("2600::5efe:169.254.169.254", False, False, "cloud metadata", id="isatap-metadata"),
    pytest.param("2600::200:5efe:8.8.8.8", True, True, "public", id="isatap-public"),
    pytest.param("fe80::5efe:8.8.8.8", False, True, "link-local", id="isatap-link-local-prefix"),
    pytest.param("::", False, True, "unspecified", id="ipv6-unspecified-itself"),
    pytest.param("::1", False, True, "loopback", id="ipv6-loopback-itself"),
    pytest.param("fd00:ec2::254%eth0", False, False, "cloud metadata", id="metadata-with-a-zone"),
]


@pytest.mark.parametrize(("address", "by_default", "with_private", "kind"), EMBEDDED)
def test_an_ipv6_address_that_carries_an_ipv4_address_is_judged_and_described_by_it(
    address: str, by_default: bool, with_private: bool, kind: str
) -> None:
    parsed = _address(address)
    assert address_allowed(parsed, allow_private=False) is by_default
    assert address_allowed(parsed, allow_private=True) is with_private
    assert describe(parsed) == kind
    assert refusal(parsed).startswith(f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address")


@pytest.mark.parametrize(
    ("address", "form", "carried"),
    [
        ("::ffff:10.0.0.5", "IPv4-mapped", ["10.0.0.5"]),
        ("::10.0.0.5", "IPv4-compatible", ["10.0.0.5"]),
        ("::ffff:0:10.0.0.5", "IPv4-translated", ["10.0.0.5"]),
        ("64:ff9b::10.0.0.5", "NAT64", ["10.0.0.5"]),
        ("2002:a00:5::", "6to4", ["10.0.0.5"]),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffa", "Teredo", ["10.0.0.5", "65.54.227.120"]),
        ("2600::200:5efe:10.0.0.5", "ISATAP", ["10.0.0.5"]),
    ],
)
def test_each_ipv6_form_gives_the_ipv4_address_it_carries(
    address: str, form: str, carried: list[str]
) -> None:
    parsed = _address(address)
    assert isinstance(parsed, ipaddress.IPv6Address)
    embedded = embedded_ipv4(parsed)
    assert embedded is not None
    assert embedded.form == form
    assert embedded.addresses == tuple(ipaddress.IPv4Address(a) for a in carried)


@pytest.mark.parametrize(
    ("address", "prefix_length"),
    [
        ("64:ff9b:1::192.0.2.33", 96),
        ("64:ff9b:1:0:c0:2:2100:0", 64),
        ("64:ff9b:1:c0:0:221::", 56),
        ("64:ff9b:1:c000:2:2100::", 48),
    ],
)
def test_a_local_use_nat64_address_gives_the_ipv4_address_after_each_prefix_length_it_may_have(
    address: str, prefix_length: int
) -> None:
    """RFC 6052 section 2.4's 192.0.2.33 after a prefix in 64:ff9b:1::/48; bits 64 to 71 stay zero."""
    parsed = _address(address)
    assert isinstance(parsed, ipaddress.IPv6Address)
    embedded = embedded_ipv4(parsed)
    assert embedded is not None
    assert embedded.form == "local-use NAT64"
    assert ipaddress.IPv4Address("192.0.2.33") in embedded.addresses
    assert embedded.addresses[(96, 64, 56, 48).index(prefix_length)] == ipaddress.IPv4Address("192.0.2.33")


@pytest.mark.parametrize("address", ["::", "::1", "2606:2800:21f:cb07:6820:80da:af6b:c3c6", "fe80::1"])
def test_an_ipv6_address_that_carries_no_ipv4_address_gives_none(address: str) -> None:
    parsed = _address(address)
    assert isinstance(parsed, ipaddress.IPv6Address)
    assert embedded_ipv4(parsed) is None


def test_a_refusal_names_the_carried_address_and_the_form_that_carries_it() -> None:
    assert refusal(_address("64:ff9b::7f00:1")) == "a loopback address (127.0.0.1 inside a NAT64 address)"
    assert (
        refusal(_address("::127.0.0.1")) == "a loopback address (127.0.0.1 inside an IPv4-compatible address)"
    )
    assert refusal(_address("0.0.0.0")) == "an unspecified address"


# -- split_target -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks",
        "http://example.com:8080/a?b=c",
        "http://127.0.0.1:9/",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:c3c6]/x",
    ],
)
def test_an_http_or_https_url_with_a_host_splits_without_problems(url: str) -> None:
    parts, problems = split_target(url)
    assert problems == []
    assert parts is not None
    assert parts.hostname


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param("ftp://example.com/file", "http", id="ftp"),
        pytest.param("file:///etc/passwd", "http", id="file"),
        pytest.param("javascript:alert(1)", "http", id="javascript"),
        pytest.param("http://[::1", "valid", id="unclosed-ipv6-bracket"),
        pytest.param("http://example.com:99999/", "valid", id="port-out-of-range"),
        pytest.param("http://example.com:0/", "port 0", id="port-zero"),
        pytest.param("not a url", "whitespace", id="words"),
        pytest.param("http://exa mple.com/", "whitespace", id="space-in-host"),
        pytest.param("http://example.com/\r\nX-Injected: 1", "whitespace", id="line-break"),
        pytest.param("http:///path-only", "host", id="no-host"),
        pytest.param("http://user:secret@example.com/", "credential", id="credentials-in-url"),
        pytest.param("https://example.com/" + "a" * 2100, "2048", id="too-long"),
    ],
)
def test_a_bad_target_url_has_problems_that_all_name_target_url(url: str, says: str) -> None:
    parts, problems = split_target(url)
    assert parts is None
    assert problems
    assert {p.field for p in problems} == {"targetUrl"}
    assert any(says in p.message for p in problems), problems


def test_a_url_with_several_problems_reports_each_of_them() -> None:
    _, problems = split_target("ftp://user:pw@:0/")
    messages = " | ".join(p.message for p in problems)
    assert len(problems) >= 3, messages
    assert "http" in messages
    assert "host" in messages
    assert "credential" in messages


def test_a_credentials_problem_does_not_repeat_the_password() -> None:
    _, problems = split_target("http://user:s3cr3t-pass@example.com/")
    assert problems
    assert all("s3cr3t-pass" not in p.message for p in problems)


# -- signing ------------------------------------------------------------------------------------------

BODY = b'{"id":"evt_1","type":"alert.activated","data":{"alert_name":"Disk full"}}'


def _secret(seed: int) -> str:
    return new_signing_secret(bytes([seed]) * 32)


def _headers(message_id: str, timestamp: int, signature_value: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_value,
    }


def test_a_signing_secret_is_whsec_and_base64_of_the_random_bytes() -> None:
    raw = bytes(range(32))
    secret = new_signing_secret(raw)
    assert secret.startswith("whsec_")
    assert base64.b64decode(secret.removeprefix("whsec_")) == raw


def test_a_signing_secret_from_too_few_random_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="24"):
        new_signing_secret(b"x" * 16)


def test_a_signature_header_verifies_with_the_standard_webhooks_library() -> None:
    secret = _secret(1)
    now = int(time.time())
    header = signature_header([secret], "msg_2Lq1", now, BODY)
    assert header.startswith("v1,")
    assert " " not in header
    verified = StandardWebhook(secret).verify(BODY, _headers("msg_2Lq1", now, header))
    assert verified["data"] == {"alert_name": "Disk full"}


def test_a_signature_matches_the_standard_webhooks_library_own_signature() -> None:
    secret = _secret(7)
    now = int(time.time())
    expected = StandardWebhook(secret).sign("msg_x", datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    assert signature(secret, "msg_x", now, BODY) == expected


@pytest.mark.parametrize(
    ("message_id", "body"),
    [
        pytest.param("msg_other", BODY, id="other-message-id"),
        pytest.param("msg_2Lq1", BODY.replace(b"Disk", b"Dusk"), id="altered-body"),
    ],
)
def test_a_signature_does_not_verify_for_another_message_or_body(message_id: str, body: bytes) -> None:
    secret = _secret(1)
    now = int(time.time())
    header = signature_header([secret], "msg_2Lq1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(body, _headers(message_id, now, header))


def test_a_signature_does_not_verify_with_another_secret() -> None:
    now = int(time.time())
    header = signature_header([_secret(1)], "msg_2Lq1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(_secret(2)).verify(BODY, _headers("msg_2Lq1", now, header))


def test_with_two_secrets_both_signatures_are_present_and_each_secret_verifies() -> None:
    current, previous = _secret(3), _secret(4)
    now = int(time.time())
    header = signature_header([current, previous], "msg_rot", now, BODY)

    signatures = header.split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    assert signatures == [
        signature(current, "msg_rot", now, BODY),
        signature(previous, "msg_rot", now, BODY),
    ]
    assert signatures[0] != signatures[1]
    for secret in (current, previous):
        verified = StandardWebhook(secret).verify(BODY, _headers("msg_rot", now, header))
        assert verified["type"] == "alert.activated"
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(_secret(5)).verify(BODY, _headers("msg_rot", now, header))
