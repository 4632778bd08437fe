"""The store's cipher keeps the library's format: stores written before it are read, and the other way."""

from __future__ import annotations

import pytest
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from store.cipher import KeyedAESCipher


def environment() -> Environment:
    return Environment(env={"CIPHER_KEY": AESCipher.create_key(32)})


def test_what_either_cipher_writes_the_other_reads() -> None:
    env = environment()
    ours, library = KeyedAESCipher(env), AESCipher(env)
    for plaintext in (b"", b"{}", b"x" * 1500, bytes(range(256))):
        assert library.decrypt(ours.encrypt(plaintext)) == plaintext
        assert ours.decrypt(library.encrypt(plaintext)) == plaintext


def test_each_encryption_takes_a_new_nonce() -> None:
    cipher = KeyedAESCipher(environment())
    assert cipher.encrypt(b"same") != cipher.encrypt(b"same")


def test_a_changed_byte_or_another_key_is_refused() -> None:
    cipher = KeyedAESCipher(environment())
    sealed = bytearray(cipher.encrypt(b"a stored state"))
    sealed[-1] ^= 1
    with pytest.raises(ValueError, match="Invalid cipher tag"):
        cipher.decrypt(bytes(sealed))
    with pytest.raises(ValueError, match="Invalid cipher tag"):
        KeyedAESCipher(environment()).decrypt(cipher.encrypt(b"a stored state"))


def test_a_truncated_ciphertext_is_named_damaged() -> None:
    cipher = KeyedAESCipher(environment())
    with pytest.raises(ValueError, match="invalid nonce length"):
        cipher.decrypt(b"short")
    with pytest.raises(ValueError, match="invalid tag length"):
        cipher.decrypt(cipher.encrypt(b"")[:20])
