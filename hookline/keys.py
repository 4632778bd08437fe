"""The store's encryption key, from HOOKLINE_SECRET_KEY or a key file generated once; and the key that
signs the audit export's checkpoints, from HOOKLINE_AUDIT_SIGNING_KEY or a key file generated once beside it.

A base64 string of 32 bytes is the key as it is. Any other value is a passphrase, stretched with scrypt
under a random salt that is kept, with the cost, in the store's own database (`hl_store_key`, readable
before anything is decrypted): every process on the store derives the same key, and two stores with the
same passphrase get different keys. A store that already had events when it met its first salt was made
when a passphrase went through one bare SHA-256: it is recorded as "sha256-legacy" and keeps that key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.cryptography import AESCipher

from domain.application import Hookline
from hookline.settings import Settings

log = structlog.get_logger("hookline")

KEY_FILE = "secret.key"
SIGNING_KEY_FILE = "audit-signing.key"
SCRYPT = "scrypt"
LEGACY = "sha256-legacy"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # 32 MiB and ~0.1 s once per process start
SALT_BYTES = 16
SQLITE_EVENTS = "stored_events"  # as eventsourcing names the SQLite table
POSTGRES_EVENTS = f"{Hookline.name.lower()}_events"  # as it names the PostgreSQL one, in "public"
KEY_LOCK = 0x486C4B79  # any constant of ours, for pg_advisory_xact_lock: "HlKy"

CREATE = (
    "CREATE TABLE IF NOT EXISTS hl_store_key (id INTEGER PRIMARY KEY, kdf TEXT NOT NULL,"
    " salt TEXT NOT NULL, n INTEGER NOT NULL, r INTEGER NOT NULL, p INTEGER NOT NULL)"
)
SELECT = "SELECT kdf, salt, n, r, p FROM hl_store_key WHERE id = 1"
INSERT = (
    "INSERT INTO hl_store_key (id, kdf, salt, n, r, p) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)

# Runs one statement in the key's transaction; returns the first row, if any.
Run = Callable[[str, Sequence[Any]], Any]


@dataclass(frozen=True)
class KeyFile:
    """What a generated key is for, as its warnings say it."""

    variable: str
    purpose: str
    advice: str


STORE_KEY = KeyFile(
    "HOOKLINE_SECRET_KEY",
    "encrypting the store",
    "without this file the store cannot be read; keep a copy apart from the database's backups",
)
AUDIT_SIGNING_KEY = KeyFile(
    "HOOKLINE_AUDIT_SIGNING_KEY",
    "signing the audit export's checkpoints",
    "keep it: auditors check exports against its public key (`hookline audit public-key`); whoever"
    " holds it can sign a forged export",
)


@dataclass(frozen=True)
class Derivation:
    kdf: str
    salt: bytes
    n: int
    r: int
    p: int

    def key(self, passphrase: str) -> bytes:
        secret = passphrase.encode()
        if self.kdf == LEGACY:
            return hashlib.sha256(secret).digest()
        if self.kdf != SCRYPT:
            raise ValueError(f"the store's key is derived with {self.kdf!r}, unknown to this version")
        memory = 128 * self.r * (self.n + self.p + 2)
        return hashlib.scrypt(
            secret, salt=self.salt, n=self.n, r=self.r, p=self.p, maxmem=memory + 2**20, dklen=32
        )

    def row(self) -> tuple[str, str, int, int, int]:
        return self.kdf, base64.b64encode(self.salt).decode(), self.n, self.r, self.p


def store_key(settings: Settings, store: Mapping[str, str]) -> str:
    """The AES key (base64 of 32 bytes) for the store that `store` (eventsourcing's settings) names."""
    if settings.secret_key is None:
        return key_file(settings.var_dir / KEY_FILE)
    given = settings.secret_key.get_secret_value()
    if is_raw_key(given):
        return given
    derivation = derivation_of(store)
    if derivation.kdf == LEGACY:
        log.warning(
            "the store's key comes from HOOKLINE_SECRET_KEY through one SHA-256, as stores made before"
            " scrypt were keyed; it is kept so that this store opens",
            advice="re-key: move the data to a new store under a base64 32-byte key or a new passphrase,"
            " which is stretched with scrypt",
        )
    return base64.b64encode(derivation.key(given)).decode()


def is_raw_key(given: str) -> bool:
    try:
        return len(base64.b64decode(given, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def audit_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The Ed25519 key that signs the audit export's checkpoints; ValueError when the setting is not
    base64 of 32 bytes (the message does not hold the value)."""
    if settings.audit_signing_key is None:
        given = key_file(settings.var_dir / SIGNING_KEY_FILE, AUDIT_SIGNING_KEY)
    else:
        given = settings.audit_signing_key.get_secret_value()
    if not is_raw_key(given):
        raise ValueError(f"{AUDIT_SIGNING_KEY.variable} must be base64 of 32 raw bytes")
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(given))


def key_file(path: Path, kind: KeyFile = STORE_KEY) -> str:
    """The key (base64 of 32 random bytes) in `path`, generated there (owner-only) on first use."""
    if path.exists():
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                f"the key file for {kind.purpose} can be read by others than its owner",
                path=str(path),
                advice="chmod 600 it, and keep it apart from the database's backups",
            )
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = AESCipher.create_key(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    log.warning(
        f"{kind.variable} is not set: generated a key for {kind.purpose}", path=str(path), advice=kind.advice
    )
    return key


def derivation_of(store: Mapping[str, str]) -> Derivation:
    """The store's recorded derivation, recorded now if it has none (one process at a time)."""
    if store.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        return _postgres(store)
    return _sqlite(Path(store["SQLITE_DBNAME"]))


def _recorded(run: Run, has_events: Callable[[], bool]) -> Derivation:
    run(CREATE, ())
    row = run(SELECT, ())
    if row is None:
        if has_events():  # made before salts were kept: its key is the passphrase's SHA-256
            fresh = Derivation(LEGACY, b"", 0, 0, 0)
        else:
            fresh = Derivation(SCRYPT, os.urandom(SALT_BYTES), SCRYPT_N, SCRYPT_R, SCRYPT_P)
        run(INSERT, fresh.row())
        row = run(SELECT, ())
    kdf, salt, n, r, p = row
    return Derivation(kdf, base64.b64decode(salt), int(n), int(r), int(p))


def _sqlite(path: Path) -> Derivation:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:

        def run(statement: str, params: Sequence[Any]) -> Any:
            return db.execute(statement, params).fetchone()

        def has_events() -> bool:
            exists = run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SQLITE_EVENTS,))
            return exists is not None and run(f"SELECT 1 FROM {SQLITE_EVENTS} LIMIT 1", ()) is not None

        db.execute("BEGIN IMMEDIATE")  # the write lock: processes starting together go one by one
        try:
            derivation = _recorded(run, has_events)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return derivation


def _postgres(store: Mapping[str, str]) -> Derivation:
    import psycopg

    with psycopg.connect(
        dbname=store["POSTGRES_DBNAME"],
        host=store["POSTGRES_HOST"],
        port=store["POSTGRES_PORT"],
        user=store["POSTGRES_USER"],
        password=store["POSTGRES_PASSWORD"],
    ) as connection:  # one transaction, committed at the end of the block

        def run(statement: str, params: Sequence[Any]) -> Any:
            cursor = connection.execute(statement.replace("?", "%s"), params)
            return cursor.fetchone() if cursor.description else None

        def has_events() -> bool:
            if run("SELECT to_regclass(?)", (f"public.{POSTGRES_EVENTS}",))[0] is None:
                return False
            return run(f"SELECT 1 FROM public.{POSTGRES_EVENTS} LIMIT 1", ()) is not None

        # CREATE TABLE IF NOT EXISTS is not safe under concurrency in PostgreSQL: one process at a time.
        run("SELECT pg_advisory_xact_lock(?)", (KEY_LOCK,))
        return _recorded(run, has_events)
