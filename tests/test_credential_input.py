"""What an OAuth2 client-credentials or mTLS credential must hold, checked on save with every problem at
once; what it gives the sender; and which hosts the egress proxy leaves alone. Pure rules, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.credentials import Credential, CredentialKind, TokenGrant, check_credential, credential_data
from domain.targets import proxy_bypassed
from harness.certificates import Authority

NOW = datetime.now(UTC)
CA = Authority.create("Test client CA")
CLIENT = CA.client("hookline-client")
OTHER = CA.client("someone-else")
EXPIRED = CA.client("hookline-client", expired=True)
OAUTH2 = CredentialKind.OAUTH2_CLIENT_CREDENTIALS
MTLS = CredentialKind.MTLS


def problems(kind: CredentialKind, **parts: str | None) -> dict[str, str]:
    found = check_credential("a credential", kind, dict(parts), NOW)
    return {p.field: p.message for p in found}


def oauth2(**overrides: str | None) -> dict[str, str | None]:
    parts: dict[str, str | None] = {
        "tokenUrl": "https://login.example.com/oauth2/token",
        "clientId": "hookline",
        "clientSecret": "s3cret-client-secret",
    }
    return {**parts, **overrides}


def test_an_oauth2_credential_needs_a_token_url_a_client_id_and_a_secret() -> None:
    assert problems(OAUTH2, **oauth2()) == {}
    assert problems(OAUTH2, **oauth2(scope="incidents.write", audience="https://api.example.com")) == {}
    assert problems(OAUTH2) == {
        "tokenUrl": "is required for a OAUTH2_CLIENT_CREDENTIALS credential",
        "clientId": "is required for a OAUTH2_CLIENT_CREDENTIALS credential",
        "clientSecret": "is required for a OAUTH2_CLIENT_CREDENTIALS credential",
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://login.example.com/token", "must be an http or https URL"),
        ("https://user:pw@login.example.com/token", "must not carry credentials; use a credential instead"),
        ("https:///token", "must name a host"),
        ("https://login.example.com/to ken", "must not contain whitespace or control characters"),
    ],
)
def test_a_token_url_that_is_not_an_http_url_is_refused(url: str, message: str) -> None:
    assert problems(OAUTH2, **oauth2(tokenUrl=url)) == {"tokenUrl": message}


def test_parts_of_another_kind_are_refused_each_by_name() -> None:
    found = problems(
        CredentialKind.BEARER, token="abc", clientSecret="x", certificatePem=CLIENT.certificate_pem
    )
    assert found == {
        "clientSecret": "does not belong to a BEARER credential",
        "certificatePem": "does not belong to a BEARER credential",
    }
    assert problems(
        MTLS, certificatePem=CLIENT.certificate_pem, privateKeyPem=CLIENT.private_key_pem, scope="a"
    ) == {"scope": "does not belong to a MTLS credential"}


def test_a_client_secret_with_a_line_break_is_refused() -> None:
    assert problems(OAUTH2, **oauth2(clientSecret="abc\ndef")) == {
        "clientSecret": "must not contain line breaks or NUL characters"
    }


def test_a_matching_certificate_and_key_are_accepted_with_their_line_breaks() -> None:
    assert problems(MTLS, certificatePem=CLIENT.certificate_pem, privateKeyPem=CLIENT.private_key_pem) == {}


def test_malformed_pem_is_named_in_each_field_at_once() -> None:
    found = problems(
        MTLS, certificatePem="not a certificate", privateKeyPem="-----BEGIN PRIVATE KEY-----\nxx"
    )
    assert found == {
        "certificatePem": "is not a PEM certificate",
        "privateKeyPem": "is not a PEM private key",
    }


def test_a_key_that_is_not_the_certificates_is_refused() -> None:
    found = problems(MTLS, certificatePem=CLIENT.certificate_pem, privateKeyPem=OTHER.private_key_pem)
    assert found == {"privateKeyPem": "does not match the certificate's public key"}


def test_an_expired_certificate_and_a_bad_ca_bundle_are_reported_together() -> None:
    found = check_credential(
        "",
        MTLS,
        {
            "certificatePem": EXPIRED.certificate_pem,
            "privateKeyPem": OTHER.private_key_pem,
            "caBundlePem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
        },
        NOW,
    )
    by_field = {p.field: p.message for p in found}
    assert set(by_field) == {"name", "certificatePem", "privateKeyPem", "caBundlePem"}
    assert by_field["certificatePem"].startswith("expired on ")
    assert by_field["privateKeyPem"] == "does not match the certificate's public key"
    assert by_field["caBundlePem"] == "is not a PEM bundle of one or more certificates"


def test_a_ca_bundle_may_go_with_any_kind() -> None:
    assert problems(CredentialKind.BEARER, token="abcdef", caBundlePem=CA.pem) == {}
    assert problems(OAUTH2, **oauth2(caBundlePem=CA.pem)) == {}


def test_no_problem_message_quotes_a_private_key() -> None:
    garbage_key = CLIENT.private_key_pem.replace("PRIVATE KEY", "PRIVATE KEX")
    found = check_credential("c", MTLS, {"certificatePem": "x", "privateKeyPem": garbage_key}, NOW)
    body = CLIENT.private_key_pem.splitlines()[1]
    assert found
    assert not any(body in p.message for p in found)


def credential(kind: CredentialKind, parts: dict[str, str | None]) -> Credential:
    return Credential(uuid4(), "c", kind.value, credential_data(parts), "admin")


def test_an_oauth2_credential_gives_a_grant_and_no_header_and_masks_its_client_secret() -> None:
    saved = credential(OAUTH2, oauth2(scope="incidents.write"))
    assert saved.headers() == {}
    grant = saved.token_grant()
    assert grant == TokenGrant(
        "https://login.example.com/oauth2/token", "hookline", "s3cret-client-secret", "incidents.write", None
    )
    assert grant.form() == {"grant_type": "client_credentials", "scope": "incidents.write"}
    assert saved.masked_secret == "••••et"
    assert saved.tls() is None
    assert "s3cret" not in repr(grant)
    assert "s3cret" not in repr(saved)


def test_an_mtls_credential_gives_its_tls_and_shows_nothing_of_its_key() -> None:
    saved = credential(
        MTLS, {"certificatePem": CLIENT.certificate_pem, "privateKeyPem": CLIENT.private_key_pem}
    )
    tls = saved.tls()
    assert tls is not None
    assert tls.private_key_pem == CLIENT.private_key_pem
    assert saved.masked_secret == "••••"
    assert saved.headers() == {}
    assert saved.token_grant() is None
    assert "PRIVATE" not in repr(tls)


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("api.corp.example", ("corp.example",), True),
        ("api.corp.example", (".corp.example",), True),
        ("corp.example", ("*.corp.example",), True),
        ("CORP.example.", ("corp.example",), True),
        ("notcorp.example", ("corp.example",), False),
        ("corp.example.net", ("corp.example",), False),
        ("10.0.0.5", ("10.0.0.5",), True),
        ("::1", ("[::1]",), True),
        ("anything.example", ("*",), True),
        ("anything.example", (), False),
    ],
)
def test_no_proxy_names_hosts_and_their_subdomains(
    host: str, no_proxy: tuple[str, ...], bypassed: bool
) -> None:
    assert proxy_bypassed(host, no_proxy) is bypassed
