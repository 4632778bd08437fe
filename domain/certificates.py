"""Whether a credential's PEM parts can be used for TLS: a client certificate with its key, a CA bundle.

Pure (the time is a parameter). Messages never quote the PEM text: a private key must not reach an error.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from domain.errors import Problem

MAX_PEM = 256 * 1024


def check_client_certificate(certificate_pem: str, private_key_pem: str, now: datetime) -> list[Problem]:
    """Every problem at once: each part must parse, the key must be the certificate's, and the
    certificate (the first of a chain) must be valid now."""
    problems: list[Problem] = []
    certificates = _certificates(certificate_pem)
    if not certificates:
        problems.append(Problem("certificatePem", "is not a PEM certificate"))
    key = _private_key(private_key_pem)
    if isinstance(key, str):
        problems.append(Problem("privateKeyPem", key))
    if certificates:
        leaf = certificates[0]
        problems += _validity_problems("certificatePem", leaf, now)
        if not isinstance(key, str) and _public_der(key.public_key()) != _public_der(leaf.public_key()):
            problems.append(Problem("privateKeyPem", "does not match the certificate's public key"))
    return problems


def check_ca_bundle(bundle_pem: str) -> list[Problem]:
    if not _certificates(bundle_pem):
        return [Problem("caBundlePem", "is not a PEM bundle of one or more certificates")]
    return []


def _certificates(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, UnicodeError):
        return []


def _private_key(pem: str) -> PrivateKeyTypes | str:
    """The key, or why it cannot be used."""
    try:
        return load_pem_private_key(pem.encode(), password=None)
    except TypeError:  # it is encrypted
        return "must not be encrypted with a passphrase"
    except (ValueError, UnicodeError):
        return "is not a PEM private key"
    except Exception:  # cryptography's UnsupportedAlgorithm and the like; never its text
        return "is not a private key of a supported kind"


def _validity_problems(field: str, certificate: x509.Certificate, now: datetime) -> list[Problem]:
    if certificate.not_valid_after_utc <= now:
        return [Problem(field, f"expired on {certificate.not_valid_after_utc.isoformat()}")]
    if certificate.not_valid_before_utc > now:
        return [Problem(field, f"is not valid before {certificate.not_valid_before_utc.isoformat()}")]
    return []


def _public_der(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    der: bytes = public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return der
