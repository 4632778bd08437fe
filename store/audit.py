"""The audit trail's table: every stored event as an audit record, hash-chained per organisation.

Kept by the same follower (and in the same transaction) as the other read models; records are encrypted
at rest like the events they describe. `store.verification` recomputes the chain from the stored events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Cipher, Mapper

from domain.audit import GENESIS, chain_hash, named_owner, record_of
from store.sql import Database

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS hl_audit ("
    " position {bigint} PRIMARY KEY, organization_id TEXT NOT NULL, aggregate_id TEXT NOT NULL,"
    " record {blob} NOT NULL, hash TEXT NOT NULL, previous_hash TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS hl_audit_org ON hl_audit (organization_id, position)",
    "CREATE INDEX IF NOT EXISTS hl_audit_aggregate ON hl_audit (aggregate_id, position)",
    "CREATE TABLE IF NOT EXISTS hl_audit_owners ("
    " aggregate_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL)",
    # an organisation's aggregates, for verifying its chain alone
    "CREATE INDEX IF NOT EXISTS hl_audit_owners_org ON hl_audit_owners (organization_id)",
    "CREATE TABLE IF NOT EXISTS hl_audit_heads (organization_id TEXT PRIMARY KEY, hash TEXT NOT NULL)",
]
AUDIT_TABLES = ("hl_audit", "hl_audit_owners", "hl_audit_heads")
OWNERS_CACHE = 100_000
VERIFY_BATCH = 1000


class AuditTrail:
    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        self.cipher: Cipher | None = mapper.cipher
        self.owners: dict[UUID, UUID] = {}
        self.heads: dict[UUID, str] = {}
        self._rows: list[tuple[Any, ...]] = []
        self._owner_rows: dict[UUID, UUID] = {}  # learnt in this batch, written at its end
        self._moved_heads: set[UUID] = set()

    def create_tables(self, c: Any, db: Database) -> None:
        for statement in SCHEMA:
            c.execute(statement.format(blob=db.blob, bigint=db.bigint))

    def forget(self) -> None:
        """After a rolled-back batch: what is cached may not have been stored."""
        self.owners.clear()
        self.heads.clear()
        self._rows.clear()
        self._owner_rows.clear()
        self._moved_heads.clear()

    def apply(self, c: Any, position: int, domain_event: DomainEventProtocol[UUID]) -> None:
        organization_id = self.owner(c, domain_event)
        if organization_id is None:
            return
        record = record_of(position, organization_id, domain_event)
        previous = self.head(c, organization_id)
        digest = chain_hash(previous, record)
        self._rows.append(
            (
                position,
                organization_id.hex,
                domain_event.originator_id.hex,
                self._seal(record),
                digest,
                previous,
            )
        )
        self.heads[organization_id] = digest
        self._moved_heads.add(organization_id)

    def write(self, c: Any) -> None:
        """Writes what `apply` gathered for the batch (in the batch's transaction)."""
        if self._owner_rows:
            c.executemany(
                "INSERT INTO hl_audit_owners (aggregate_id, organization_id) VALUES (?, ?)"
                " ON CONFLICT (aggregate_id) DO NOTHING",
                [(aggregate.hex, owner.hex) for aggregate, owner in self._owner_rows.items()],
            )
        if self._rows:
            c.executemany(
                "INSERT INTO hl_audit (position, organization_id, aggregate_id, record, hash, previous_hash)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                self._rows,
            )
        if self._moved_heads:
            c.executemany(
                "INSERT INTO hl_audit_heads (organization_id, hash) VALUES (?, ?)"
                " ON CONFLICT (organization_id) DO UPDATE SET hash = excluded.hash",
                [(organization.hex, self.heads[organization]) for organization in self._moved_heads],
            )
        self._rows = []
        self._owner_rows = {}
        self._moved_heads = set()

    def owner(self, c: Any, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        """The organisation an event belongs to: named by creation events, remembered for the rest."""
        aggregate_id = domain_event.originator_id
        named = named_owner(domain_event)
        if named is not None:
            if aggregate_id not in self.owners:
                self._owner_rows[aggregate_id] = named
                self._remember(aggregate_id, named)
            return named
        known = self.owners.get(aggregate_id) or self._owner_rows.get(aggregate_id)
        if known is None:
            c.execute(
                "SELECT organization_id FROM hl_audit_owners WHERE aggregate_id = ?", (aggregate_id.hex,)
            )
            row = c.fetchone()
            if row is None:
                return None
            known = UUID(row[0])
            self._remember(aggregate_id, known)
        return known

    def _remember(self, aggregate_id: UUID, organization_id: UUID) -> None:
        if len(self.owners) >= OWNERS_CACHE:
            self.owners.clear()
        self.owners[aggregate_id] = organization_id

    def head(self, c: Any, organization_id: UUID) -> str:
        head = self.heads.get(organization_id)
        if head is None:
            c.execute("SELECT hash FROM hl_audit_heads WHERE organization_id = ?", (organization_id.hex,))
            row = c.fetchone()
            head = row[0] if row else GENESIS
        return head

    def _seal(self, record: dict[str, Any]) -> bytes:
        try:
            raw = orjson.dumps(record)
        except TypeError:  # past orjson's 255 levels: an event stored before payloads were limited
            raw = json.dumps(record, ensure_ascii=False).encode("utf-8")
        return self.cipher.encrypt(raw) if self.cipher else raw

    def _open(self, sealed: bytes) -> dict[str, Any]:
        raw = self.cipher.decrypt(sealed) if self.cipher else sealed
        record: dict[str, Any] = orjson.loads(raw)
        return record

    # -- reading -------------------------------------------------------------------------------------

    def entry(self, row: Any) -> dict[str, Any]:
        """A stored row as the exported entry: the record with its hashes."""
        return {**self._open(row[0]), "hash": row[1], "previousHash": row[2]}

    def page(
        self, c: Any, organization_id: UUID, aggregate_id: UUID | None, first: int, after: int | None
    ) -> tuple[list[dict[str, Any]], int, bool]:
        where = "organization_id = ?"
        params: list[Any] = [organization_id.hex]
        if aggregate_id is not None:
            where += " AND aggregate_id = ?"
            params.append(aggregate_id.hex)
        c.execute(f"SELECT COUNT(*) FROM hl_audit WHERE {where}", params)
        total = int(c.fetchone()[0])
        c.execute(
            f"SELECT record, hash, previous_hash FROM hl_audit WHERE {where} AND position > ?"
            " ORDER BY position LIMIT ?",
            [*params, after or 0, first + 1],
        )
        rows = c.fetchall()
        return [self.entry(row) for row in rows[:first]], total, len(rows) > first

    def export(self, transaction: Any, organization_id: UUID | None) -> Iterator[dict[str, Any]]:
        """Every record in store order, read in batches so that memory stays flat."""
        position = 0
        while True:
            with transaction() as c:
                if organization_id is None:
                    c.execute(
                        "SELECT record, hash, previous_hash, position FROM hl_audit"
                        " WHERE position > ? ORDER BY position LIMIT ?",
                        (position, VERIFY_BATCH),
                    )
                else:
                    c.execute(
                        "SELECT record, hash, previous_hash, position FROM hl_audit"
                        " WHERE organization_id = ? AND position > ? ORDER BY position LIMIT ?",
                        (organization_id.hex, position, VERIFY_BATCH),
                    )
                rows = c.fetchall()
            if not rows:
                return
            for row in rows:
                yield self.entry(row)
            position = rows[-1][3]
