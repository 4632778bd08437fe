"""The store's key, through a real `hookline serve` (and workers): a passphrase is stretched with scrypt
under a salt kept in the store, stores keyed by the old bare SHA-256 of a passphrase keep opening, and the
generated key file is its owner's alone."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.queries import CREATE_WEBHOOK, PUBLISH, WEBHOOK, webhook_input
from tests.support import Receiver, Server, distributed_env, server_env

PASSPHRASE = "correct horse battery staple"
MODES = ["embedded", "distributed"]


@contextmanager
def store_env(mode: str, secret: str) -> Iterator[dict[str, str]]:
    if mode == "embedded":
        yield server_env(HOOKLINE_SECRET_KEY=secret, HOOKLINE_ALLOW_PRIVATE_TARGETS="true")
        return
    with distributed_env(HOOKLINE_SECRET_KEY=secret, HOOKLINE_ALLOW_PRIVATE_TARGETS="true") as env:
        yield env


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server.start()
    finally:
        server.stop()


def query(server: Server, statement: str) -> list[tuple[Any, ...]]:
    """Rows of a statement run on the server's store (its SQLite file, or its PostgreSQL database)."""
    url = server.env.get("HOOKLINE_DATABASE_URL", "")
    if url.startswith("postgres"):
        with psycopg.connect(url) as pg:
            return [tuple(row) for row in pg.execute(statement).fetchall()]
    with closing(sqlite3.connect(server.directory / "var" / "hookline.sqlite3")) as db:
        return [tuple(row) for row in db.execute(statement).fetchall()]


def stored_states(server: Server) -> list[bytes]:
    table = (
        "hookline_events"
        if server.env.get("HOOKLINE_DATABASE_URL", "").startswith("postgres")
        else "stored_events"
    )
    return [bytes(row[0]) for row in query(server, f"SELECT state FROM {table}")]


def opens(key: bytes, state: bytes) -> bool:
    """Whether a stored state (nonce, tag, ciphertext: the store's AES-GCM) was sealed with `key`."""
    try:
        AESGCM(key).decrypt(state[:12], state[28:] + state[12:28], None)
    except InvalidTag:
        return False
    return True


def scrypt_key(passphrase: str, salt: bytes) -> bytes:
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=64 * 2**20, dklen=32)


def deliver_one(server: Server, org: str, receiver: Receiver) -> None:
    admin = server.key(org, "admin")
    publisher = server.key(org, "publisher")
    server.gql(admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url + f"/{org}")}).ok()
    server.gql(
        publisher, PUBLISH, {"input": {"type": "alert.activated", "payload": {"alert_name": org}}}
    ).ok()
    (received,) = receiver.wait_for(1)
    assert org.encode() in received.body


@pytest.mark.parametrize("mode", MODES)
def test_a_store_keyed_by_the_old_sha256_of_a_passphrase_still_opens_and_is_marked_legacy(
    mode: str, tmp_path: Path, receiver: Receiver
) -> None:
    # The key the old derivation made of the passphrase, given as it is: a store exactly as it was written.
    legacy_key = base64.b64encode(hashlib.sha256(PASSPHRASE.encode()).digest()).decode()
    with store_env(mode, legacy_key) as env:
        server = Server(directory=tmp_path, env=env, workers=2 if mode == "distributed" else 0)
        with running(server):
            admin = server.key("legacy", "admin")
            created = server.gql(
                admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url + "/legacy", name="Before")}
            ).ok()["createWebhook"]

        server.env["HOOKLINE_SECRET_KEY"] = PASSPHRASE
        with running(server):
            webhook = server.gql(admin, WEBHOOK, {"id": created["id"]}).ok()["webhook"]
            assert webhook["name"] == "Before"
            assert webhook["signingSecret"] == created["signingSecret"]
            deliver_one(server, "legacy-after", receiver)  # serve and its workers derive the same key
            assert "through one SHA-256" in server.output()
            assert query(server, "SELECT kdf FROM hl_store_key") == [("sha256-legacy",)]


def test_serve_and_workers_starting_together_on_a_new_postgres_store_share_one_scrypt_key(
    tmp_path: Path, receiver: Receiver
) -> None:
    with distributed_env(HOOKLINE_SECRET_KEY=PASSPHRASE, HOOKLINE_ALLOW_PRIVATE_TARGETS="true") as env:
        server = Server(directory=tmp_path, env=env)
        try:
            server.start_worker()
            server.start_worker()
            server.start()  # the workers and serve race to key the empty database
            server.wait_for_workers()
            deliver_one(server, "together", receiver)

            ((kdf, salt, n, r, p),) = query(server, "SELECT kdf, salt, n, r, p FROM hl_store_key")
            assert (kdf, n, r, p) == ("scrypt", 2**15, 8, 1)
            salt_bytes = base64.b64decode(salt)
            assert len(salt_bytes) == 16
            states = stored_states(server)
            assert states
            assert all(opens(scrypt_key(PASSPHRASE, salt_bytes), state) for state in states)
            assert not any(opens(hashlib.sha256(PASSPHRASE.encode()).digest(), state) for state in states)
        finally:
            server.stop()


def test_two_stores_with_the_same_passphrase_get_different_salts_and_keys(
    tmp_path: Path, receiver: Receiver
) -> None:
    salts = []
    states = []
    for name in ("one", "two"):
        directory = tmp_path / name
        directory.mkdir()
        server = Server(directory=directory, env=server_env(HOOKLINE_SECRET_KEY=PASSPHRASE))
        with running(server):
            server.key(name, "admin")
        ((kdf, salt),) = query(server, "SELECT kdf, salt FROM hl_store_key")
        assert kdf == "scrypt"
        salts.append(base64.b64decode(salt))
        states.append(stored_states(server)[0])
    assert salts[0] != salts[1]
    assert opens(scrypt_key(PASSPHRASE, salts[0]), states[0])
    assert not opens(scrypt_key(PASSPHRASE, salts[0]), states[1])
    assert opens(scrypt_key(PASSPHRASE, salts[1]), states[1])


def test_the_generated_key_file_is_readable_by_its_owner_only(embedded_server: Server) -> None:
    path = embedded_server.directory / "var" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "keep a copy apart from the database's backups" in embedded_server.output()


def test_a_key_file_that_others_can_read_is_warned_about_at_start(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    key_file = var / "secret.key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    key_file.chmod(0o644)
    server = Server(directory=tmp_path, env=server_env())
    with running(server):
        listed = server.gql(server.key("open-file", "admin"), "{ webhooks { totalCount } }").ok()
        assert listed["webhooks"]["totalCount"] == 0
        assert "can be read by others than its owner" in server.output()
