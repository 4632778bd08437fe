"""The audit trail's table: every stored event as an audit record, hash-chained per organisation (chain v2).

Kept by the same follower (and in the same transaction) as the other read models, but written once: a
row holds the record's position, organisation, aggregate, `dataHash` and hashes, and the record's
content is derived from the stored event at its position whenever it is read or exported (a stored
event is the only copy of what it says). The trail is not rebuilt with the read models: once data can
be erased, its `dataHash` can no longer be recomputed from the log. A trail of chain v1 (an encrypted
copy of each record, data inside the chain) is migrated once, on start. `store.verification`
recomputes the chain from the stored events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent

from domain.audit import GENESIS, data_hash, named_owner, record_hash, record_of
from store.sql import Cursor, Database

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS hl_audit ("
    " position {bigint} PRIMARY KEY, organization_id {blob} NOT NULL, aggregate_id {blob} NOT NULL,"
    " data_hash {blob} NOT NULL, hash {blob} NOT NULL, previous_hash {blob} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS hl_audit_org ON hl_audit (organization_id, position)",
    "CREATE INDEX IF NOT EXISTS hl_audit_aggregate ON hl_audit (aggregate_id, position)",
    "CREATE TABLE IF NOT EXISTS hl_audit_heads (organization_id TEXT PRIMARY KEY, hash TEXT NOT NULL)",
    # Runs of an organisation's records removed by retention (`store.retention`): the chain goes on
    # from the hash of each run's last record.
    "CREATE TABLE IF NOT EXISTS hl_audit_removed (organization_id {blob} NOT NULL,"
    " first_position {bigint} NOT NULL, last_position {bigint} NOT NULL, last_hash {blob} NOT NULL,"
    " PRIMARY KEY (organization_id, last_position))",
]
CHAIN = "2"  # the chain the trail holds, in the read model's meta table as `audit_chain`
OWNERS_CACHE = 100_000
VERIFY_BATCH = 1000
ROW = "position, organization_id, data_hash, hash, previous_hash"


class MissingStoredEvent(LookupError):
    """An audit record whose stored event is gone or unreadable: its content cannot be shown."""

    def __init__(self, position: int) -> None:
        super().__init__(f"the stored event of audit record {position} is missing or unreadable")
        self.position = position


class AuditTrail:
    def __init__(self, db: Database, mapper: Mapper[UUID]) -> None:
        self.db = db
        self.mapper = mapper
        self.owners: dict[UUID, UUID] = {}
        self.heads: dict[UUID, str] = {}
        self.chained_until = 0  # positions up to here are in the trail already (a read-model rebuild)
        self._rows: list[tuple[Any, ...]] = []
        self._learnt: dict[UUID, UUID] = {}  # owners named in this batch, whose rows are not written yet
        self._moved_heads: set[UUID] = set()

    def create_tables(self, c: Cursor, had_read_model: bool) -> None:
        """Creates the tables, or migrates a trail of chain v1 into v2 (a store whose read model was made
        before chain v2 has one), in the read model's start-up transaction."""
        c.execute("SELECT value FROM hl_meta WHERE name = 'audit_chain'")
        row = c.fetchone()
        if row is None and had_read_model:
            self._migrate_v1(c)
        else:
            self._create(c)
        c.execute(
            "INSERT INTO hl_meta (name, value) VALUES ('audit_chain', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (CHAIN,),
        )
        c.execute("SELECT MAX(position) FROM hl_audit")
        self.chained_until = int(c.fetchone()[0] or 0)

    def _create(self, c: Cursor) -> None:
        for statement in SCHEMA:
            c.execute(statement.format(blob=self.db.blob, bigint=self.db.bigint))

    def _migrate_v1(self, c: Cursor) -> None:
        """Recomputes a v1 trail's chains into v2, each record derived from its stored event (or, when
        that is gone or unreadable, from the v1 trail's own copy, so that verification still finds it)."""
        for index in ("hl_audit_org", "hl_audit_aggregate"):
            c.execute(f"DROP INDEX IF EXISTS {index}")
        c.execute("ALTER TABLE hl_audit RENAME TO hl_audit_v1")
        self._create(c)
        heads: dict[str, str] = {}
        position = 0
        while True:
            c.execute(
                "SELECT position, organization_id, aggregate_id, record FROM hl_audit_v1"
                " WHERE position > ? ORDER BY position LIMIT ?",
                (position, VERIFY_BATCH),
            )
            rows = c.fetchall()
            if not rows:
                break
            stored = stored_events_at(c, self.db, [row[0] for row in rows])
            migrated = []
            for position, organization, aggregate, sealed in rows:
                record = self._derived(position, UUID(organization), stored.get(position))
                if record is None:
                    record = self._opened_v1(bytes(sealed))
                previous = heads.get(organization, GENESIS)
                digest_of_data = data_hash(record["data"])
                digest = record_hash(previous, record, digest_of_data)
                heads[organization] = digest
                migrated.append(
                    (
                        position,
                        UUID(organization).bytes,
                        UUID(aggregate).bytes,
                        digest_of_data,
                        digest,
                        previous,
                    )
                )
            self._insert(c, migrated)
        c.execute("DELETE FROM hl_audit_heads")
        if heads:
            c.executemany(
                "INSERT INTO hl_audit_heads (organization_id, hash) VALUES (?, ?)", list(heads.items())
            )
        c.execute("DROP TABLE hl_audit_v1")
        c.execute("DROP TABLE IF EXISTS hl_audit_owners")  # v1's owners: hl_audit names them now

    def _derived(
        self, position: int, organization_id: UUID, stored: StoredEvent | None
    ) -> dict[str, Any] | None:
        if stored is None:
            return None
        try:
            domain_event = self.mapper.to_domain_event(stored)
        except Exception:  # undecryptable or undecodable
            return None
        return record_of(position, organization_id, domain_event)

    def _opened_v1(self, sealed: bytes) -> dict[str, Any]:
        cipher = self.mapper.cipher
        record: dict[str, Any] = orjson.loads(cipher.decrypt(sealed) if cipher else sealed)
        return record

    def forget(self) -> None:
        """After a rolled-back batch: what is cached may not have been stored."""
        self.owners.clear()
        self.heads.clear()
        self._rows.clear()
        self._learnt.clear()
        self._moved_heads.clear()

    def apply(self, c: Cursor, position: int, domain_event: DomainEventProtocol[UUID]) -> None:
        if position <= self.chained_until:
            return
        organization_id = self.owner(c, domain_event)
        if organization_id is None:
            return
        record = record_of(position, organization_id, domain_event)
        digest_of_data = data_hash(record["data"])
        previous = self.head(c, organization_id)
        digest = record_hash(previous, record, digest_of_data)
        self._rows.append(
            (
                position,
                organization_id.bytes,
                domain_event.originator_id.bytes,
                digest_of_data,
                digest,
                previous,
            )
        )
        self.heads[organization_id] = digest
        self._moved_heads.add(organization_id)

    def write(self, c: Cursor) -> None:
        """Writes what `apply` gathered for the batch (in the batch's transaction)."""
        if self._rows:
            self._insert(c, self._rows)
        if self._moved_heads:
            c.executemany(
                "INSERT INTO hl_audit_heads (organization_id, hash) VALUES (?, ?)"
                " ON CONFLICT (organization_id) DO UPDATE SET hash = excluded.hash",
                [(organization.hex, self.heads[organization]) for organization in self._moved_heads],
            )
        self._rows = []
        self._learnt = {}
        self._moved_heads = set()

    def _insert(self, c: Cursor, rows: Sequence[tuple[int, bytes, bytes, str, str, str]]) -> None:
        """Rows of (position, organisation, aggregate, dataHash, hash, previousHash): ids as their 16
        bytes, hashes in hex, kept as their 32 bytes."""
        c.executemany(
            "INSERT INTO hl_audit (position, organization_id, aggregate_id, data_hash, hash, previous_hash)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (p, o, a, bytes.fromhex(data), bytes.fromhex(digest), bytes.fromhex(previous))
                for p, o, a, data, digest, previous in rows
            ],
        )

    def owner(self, c: Cursor, domain_event: DomainEventProtocol[UUID]) -> UUID | None:
        """The organisation an event belongs to: named by creation events, remembered for the rest."""
        aggregate_id = domain_event.originator_id
        named = named_owner(domain_event)
        if named is not None:
            if aggregate_id not in self.owners:
                self._learnt[aggregate_id] = named
                self._remember(aggregate_id, named)
            return named
        known = self.owners.get(aggregate_id) or self._learnt.get(aggregate_id)
        if known is None:  # the owner of the aggregate's first record (its creation)
            c.execute(
                "SELECT organization_id FROM hl_audit WHERE aggregate_id = ? LIMIT 1", (aggregate_id.bytes,)
            )
            row = c.fetchone()
            if row is None:
                return None
            known = UUID(bytes=bytes(row[0]))
            self._remember(aggregate_id, known)
        return known

    def _remember(self, aggregate_id: UUID, organization_id: UUID) -> None:
        if len(self.owners) >= OWNERS_CACHE:
            self.owners.clear()
        self.owners[aggregate_id] = organization_id

    def head(self, c: Cursor, organization_id: UUID) -> str:
        head = self.heads.get(organization_id)
        if head is None:
            c.execute("SELECT hash FROM hl_audit_heads WHERE organization_id = ?", (organization_id.hex,))
            row = c.fetchone()
            head = row[0] if row else GENESIS
        return head

    # -- reading -------------------------------------------------------------------------------------

    def entries(self, c: Cursor, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Trail rows (`ROW`) as exported entries: each record derived from its stored event, with its
        `dataHash` and hashes."""
        stored = stored_events_at(c, self.db, [row[0] for row in rows])
        found = []
        for position, organization, digest_of_data, digest, previous in rows:
            record = self._derived(position, UUID(bytes=bytes(organization)), stored.get(position))
            if record is None:
                raise MissingStoredEvent(position)
            record["dataHash"] = bytes(digest_of_data).hex()
            record["previousHash"] = bytes(previous).hex()
            record["hash"] = bytes(digest).hex()
            found.append(record)
        return found

    def page(
        self, c: Cursor, organization_id: UUID, aggregate_id: UUID | None, first: int, after: int | None
    ) -> tuple[list[dict[str, Any]], int, bool]:
        where = "organization_id = ?"
        params: list[Any] = [organization_id.bytes]
        if aggregate_id is not None:
            where += " AND aggregate_id = ?"
            params.append(aggregate_id.bytes)
        c.execute(f"SELECT COUNT(*) FROM hl_audit WHERE {where}", params)
        total = int(c.fetchone()[0])
        c.execute(
            f"SELECT {ROW} FROM hl_audit WHERE {where} AND position > ? ORDER BY position LIMIT ?",
            [*params, after or 0, first + 1],
        )
        rows = c.fetchall()
        return self.entries(c, rows[:first]), total, len(rows) > first

    def export(self, transaction: Any, organization_id: UUID | None) -> Iterator[dict[str, Any]]:
        """Every record in store order, read in batches so that memory stays flat; where records were
        removed by retention, a `removed` entry for the run's last record (`domain.audit`)."""
        with transaction() as c:
            runs = removed_runs(c, organization_id)
        for entry in self._records(transaction, organization_id):
            while runs and runs[0]["position"] < entry["position"]:
                yield runs.pop(0)
            yield entry
        yield from runs

    def _records(self, transaction: Any, organization_id: UUID | None) -> Iterator[dict[str, Any]]:
        position = 0
        while True:
            with transaction() as c:
                if organization_id is None:
                    c.execute(
                        f"SELECT {ROW} FROM hl_audit WHERE position > ? ORDER BY position LIMIT ?",
                        (position, VERIFY_BATCH),
                    )
                else:
                    c.execute(
                        f"SELECT {ROW} FROM hl_audit"
                        " WHERE organization_id = ? AND position > ? ORDER BY position LIMIT ?",
                        (organization_id.bytes, position, VERIFY_BATCH),
                    )
                rows = c.fetchall()
                if not rows:
                    return
                entries = self.entries(c, rows)
            yield from entries
            position = rows[-1][0]


def removed_runs(c: Cursor, organization_id: UUID | None, until: int | None = None) -> list[dict[str, Any]]:
    """Runs of records removed by retention, by their last position: `removed` entries with the
    organisation, the first and last position and the last record's hash."""
    where, params = "last_position <= ?", list[Any]([until if until is not None else 2**62])
    if organization_id is not None:
        where += " AND organization_id = ?"
        params.append(organization_id.bytes)
    c.execute(
        "SELECT organization_id, first_position, last_position, last_hash FROM hl_audit_removed"
        f" WHERE {where} ORDER BY last_position",
        params,
    )
    return [
        {
            "removed": True,
            "organizationId": str(UUID(bytes=bytes(org))),
            "first": int(first),
            "position": int(last),
            "hash": bytes(digest).hex(),
        }
        for org, first, last, digest in c.fetchall()
    ]


def stored_events_at(c: Cursor, db: Database, positions: Sequence[int]) -> dict[int, StoredEvent]:
    """The stored events at these positions (those that are there)."""
    if not positions:
        return {}
    c.execute(
        f"SELECT {db.position}, originator_id, originator_version, topic, state FROM {db.events}"
        f" WHERE {db.position} IN ({','.join('?' * len(positions))})",
        list(positions),
    )
    return {row[0]: _stored_event(row) for row in c.fetchall()}


def _stored_event(row: Any) -> StoredEvent:
    originator_id = row[1] if isinstance(row[1], UUID) else UUID(row[1])
    return StoredEvent(originator_id, row[2], row[3], bytes(row[4]))
