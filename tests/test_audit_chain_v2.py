"""Audit chain v2 (the contract's "Audit chain v2"): data enters the chain through `dataHash`, a record's
content is derived from its stored event, an export's every line and data hash is checked offline, an
erased record keeps its chain, and a store whose trail is of chain v1 is migrated once on start. On
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from domain.audit import verify_lines
from domain.events import Publication
from domain.ids import organization_id
from domain.roles import Role
from domain.webhooks import WebhookSpec
from hookline.settings import Settings
from hookline.wiring import Opened, open_application
from store.audit import MissingStoredEvent
from tests.support import Receiver, Server, postgres_database
from tests.test_audit_plane import (
    GENESIS,
    RECORD_FIELDS,
    audit_log,
    canonical_json,
    create_webhook,
    expected_data_hash,
    expected_hash,
    line_named,
    publish,
    record_lines,
    succeeded_deliveries,
    verify,
)

EXPORTED = {*RECORD_FIELDS, "previousHash", "hash"}  # an export line's keys, exactly


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def export(server: Server, path: Path) -> list[str]:
    """The record lines of a whole export written to `path` (which keeps its checkpoints)."""
    result = server.cli("audit", "export", "--out", str(path))
    assert result.returncode == 0, result.stderr
    return record_lines(path.read_text(encoding="utf-8").splitlines())


def public_key(server: Server) -> str:
    result = server.cli("audit", "public-key")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def refused_at(server: Server, path: Path, lines: list[str], number: int) -> str:
    """Writes `lines` to `path`; `hookline audit verify` must refuse it naming line `number`."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = server.cli("audit", "verify", str(path))
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert line_named(refused.stderr, number), refused.stderr
    return refused.stderr


def readme_verifier(directory: Path) -> Path:
    """The verifier README's "Audit trail" section shows auditors, as a script."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Audit trail\n(.*?)(?=^## )", readme, flags=re.M | re.S)
    assert section, "README.md has no '## Audit trail' section"
    code = re.search(r"```python\n(.*?)```", section.group(1), flags=re.S)
    assert code, "README.md's audit trail section shows no verifier"
    script = directory / "readme_verifier.py"
    script.write_text(code.group(1), encoding="utf-8")
    return script


def readme_verifies(script: Path, path: Path, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), str(path), key], capture_output=True, text=True, timeout=60, check=False
    )


def as_v1(lines: list[str]) -> list[str]:
    """An export as chain v1 wrote it: no dataHash nor erased, the data inside the hashed record."""
    heads: dict[str, str] = {}
    converted = []
    for line in lines:
        entry = json.loads(line)
        record = {k: v for k, v in entry.items() if k not in ("dataHash", "erased", "hash", "previousHash")}
        previous = heads.get(record["organizationId"], GENESIS)
        digest = sha256(previous + canonical_json(record))
        heads[record["organizationId"]] = digest
        converted.append(canonical_json({**record, "previousHash": previous, "hash": digest}))
    return converted


def test_an_export_of_chain_v2_verifies_and_names_a_changed_byte_of_data_or_hash_or_a_reordered_line(
    fresh_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    server = fresh_server
    admin, publisher = server.key("v2-export", "admin"), server.key("v2-export", "publisher")
    create_webhook(server, admin, receiver.url + "/v2")
    for number in range(3):
        publish(server, publisher, alert_name=f"Störung {number}", level=number)
    succeeded_deliveries(server, admin, 3)

    records = audit_log(server, admin)
    assert verify(server, admin) == {"valid": True, "checked": len(records), "firstInvalidPosition": None}
    for record in records:
        assert record["dataHash"] == expected_data_hash(record), record
        assert record["hash"] == expected_hash(record), record
        assert record["erased"] is False

    lines = export(server, tmp_path / "export.jsonl")
    assert [json.loads(line)["position"] for line in lines] == [r["position"] for r in records]
    assert all(set(json.loads(line)) == EXPORTED for line in lines)
    accepted = server.cli("audit", "verify", str(tmp_path / "export.jsonl"))
    assert accepted.returncode == 0, accepted.stderr
    readme = readme_verifier(tmp_path)
    key = public_key(server)
    assert readme_verifies(readme, tmp_path / "export.jsonl", key).returncode == 0

    number = next(n for n, line in enumerate(lines, 1) if "Störung 1" in line)
    changed_data = [
        line.replace("Störung 1", "Störung 7") if n == number else line for n, line in enumerate(lines, 1)
    ]
    assert "data does not match dataHash" in refused_at(server, tmp_path / "data.jsonl", changed_data, number)
    by_readme = readme_verifies(readme, tmp_path / "data.jsonl", key)
    assert by_readme.returncode != 0
    assert line_named(by_readme.stderr, number), by_readme.stderr

    entry = json.loads(lines[number - 1])
    for key in ("hash", "dataHash", "previousHash"):
        flipped = entry[key][:10] + ("0" if entry[key][10] != "0" else "1") + entry[key][11:]
        changed = [*lines[: number - 1], canonical_json({**entry, key: flipped}), *lines[number:]]
        refused_at(server, tmp_path / f"{key}.jsonl", changed, number)

    reordered = [*lines[: number - 1], lines[number], lines[number - 1], *lines[number + 1 :]]
    refused_at(server, tmp_path / "reordered.jsonl", reordered, number)

    (tmp_path / "v1.jsonl").write_text("\n".join(as_v1(lines)) + "\n", encoding="utf-8")
    old = server.cli("audit", "verify", str(tmp_path / "v1.jsonl"))
    assert old.returncode == 0, old.stderr
    v1_changed = [line.replace("Störung 1", "Störung 7") for line in as_v1(lines)]
    refused_at(server, tmp_path / "v1-changed.jsonl", v1_changed, number)


# -- in the store: erasure and migration ------------------------------------------------------------


@contextmanager
def store(kind: str, directory: Path) -> Iterator[str]:
    """A database URL of the test's own, kept across the applications the test opens on it."""
    if kind == "sqlite":
        yield f"sqlite:///{directory}/hookline.sqlite3"
        return
    with postgres_database() as url:
        yield url


@contextmanager
def application(url: str) -> Iterator[Opened]:
    settings = Settings(
        database_url=url, allow_private_targets=True, database_pool_size=2, audit_verify_reuse_seconds=0
    )
    opened = open_application(settings)
    try:
        opened.read_model.catch_up()
        yield opened
    finally:
        opened.app.close()


def some_history(opened: Opened) -> list[UUID]:
    """Two organisations, each with a webhook, published events and their deliveries: the events' ids."""
    app = opened.app
    events: list[UUID] = []
    for name in ("acme", "globex"):
        principal = app.authenticate(app.issue_key(name, Role.ADMIN))
        spec = WebhookSpec(name=f"{name} Zürich", event_types=("job.done",), target_url="http://127.0.0.1:9/")
        app.create_webhook(principal, spec, active=True, allow_duplicate=True)
        published = app.publish_events(
            principal, [Publication("job.done", {"n": n, "who": "é"}) for n in range(4)]
        )
        events.extend(event_id for event_id, _ in published)
        app.follower.catch_up()
        app.fan_out_many([event_id for event_id, _ in published])
    opened.read_model.catch_up()
    return events


def exported(opened: Opened) -> list[dict[str, Any]]:
    return list(opened.read_model.queries.export_audit(None))


def verification(opened: Opened, name: str) -> Any:
    return opened.read_model.queries.verify_audit(organization_id(name))


def offline(entries: list[dict[str, Any]]) -> Any:
    return verify_lines(canonical_json(entry) for entry in entries)


def rewrite_stored_event(opened: Opened, position: int, change: Any) -> None:
    """Rewrites the stored event at `position` through the store's own mapper (as an erasure would)."""
    db, mapper = opened.read_model.db, opened.read_model.mapper
    with db.transaction(commit=True) as c:
        c.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {db.events}"
            f" WHERE {db.position} = ?",
            (position,),
        )
        row = c.fetchone()
        originator_id = row[0] if isinstance(row[0], UUID) else UUID(row[0])
        domain_event = mapper.to_domain_event(StoredEvent(originator_id, row[1], row[2], bytes(row[3])))
        change(domain_event)
        state = mapper.to_stored_event(domain_event).state
        c.execute(f"UPDATE {db.events} SET state = ? WHERE {db.position} = ?", (state, position))


def erase_payload(domain_event: Any) -> None:
    domain_event.__dict__["payload"] = None
    domain_event.__dict__["erased"] = True


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_erased_record_reads_null_data_and_its_chain_still_verifies(kind: str, tmp_path: Path) -> None:
    with store(kind, tmp_path) as url, application(url) as opened:
        events = some_history(opened)
        before = exported(opened)
        published = next(
            e for e in before if e["aggregateId"] == str(events[1]) and e["eventType"] == "Event.Published"
        )
        rewrite_stored_event(opened, published["position"], erase_payload)

        after = exported(opened)
        erased = next(e for e in after if e["position"] == published["position"])
        assert erased == {**published, "data": None, "erased": True}
        assert [e for e in after if e is not erased] == [e for e in before if e is not published]
        assert verification(opened, "acme").valid
        assert offline(after).valid
        page = opened.read_model.queries.audit_page(organization_id("acme"), events[1], 10, None)
        assert erased in [entry for _, entry in page.items]  # what auditLog shows

        # the same change without the mark is tampering: the data no longer matches its hash
        rewrite_stored_event(opened, published["position"], lambda e: e.__dict__.update(erased=False))
        found = verification(opened, "acme")
        assert (found.valid, found.first_invalid) == (False, published["position"])
        assert verification(opened, "globex").valid


# What main's code (chain v1) created and wrote: the builder of a v1 trail.
V1_SCHEMA = (
    "CREATE TABLE hl_audit ("
    " position {bigint} PRIMARY KEY, organization_id TEXT NOT NULL, aggregate_id TEXT NOT NULL,"
    " record {blob} NOT NULL, hash TEXT NOT NULL, previous_hash TEXT NOT NULL)",
    "CREATE INDEX hl_audit_org ON hl_audit (organization_id, position)",
    "CREATE INDEX hl_audit_aggregate ON hl_audit (aggregate_id, position)",
    "CREATE TABLE hl_audit_owners (aggregate_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL)",
    "CREATE INDEX hl_audit_owners_org ON hl_audit_owners (organization_id)",
)


def made_v1(opened: Opened) -> list[dict[str, Any]]:
    """Turns the store's trail into the one chain v1 kept (an encrypted copy of each record, its hash
    over the whole record), as main's code wrote it; the v1 records."""
    db, cipher = opened.read_model.db, opened.read_model.mapper.cipher
    assert cipher is not None
    records: list[dict[str, Any]] = []
    heads: dict[str, str] = {}
    entries = exported(opened)
    with db.transaction(commit=True) as c:
        c.execute("DROP TABLE hl_audit")
        for statement in V1_SCHEMA:
            c.execute(statement.format(bigint=db.bigint, blob=db.blob))
        for entry in entries:
            record = {
                k: v for k, v in entry.items() if k not in ("dataHash", "erased", "hash", "previousHash")
            }
            organization = UUID(record["organizationId"]).hex
            previous = heads.get(organization, GENESIS)
            digest = sha256(previous + canonical_json(record))
            c.execute(
                "INSERT INTO hl_audit (position, organization_id, aggregate_id, record, hash, previous_hash)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record["position"],
                    organization,
                    UUID(record["aggregateId"]).hex,
                    cipher.encrypt(orjson.dumps(record)),
                    digest,
                    previous,
                ),
            )
            heads[organization] = digest
            c.execute(
                "INSERT INTO hl_audit_owners (aggregate_id, organization_id) VALUES (?, ?)"
                " ON CONFLICT (aggregate_id) DO NOTHING",
                (UUID(record["aggregateId"]).hex, organization),
            )
            records.append({**record, "previousHash": previous, "hash": digest})
        for organization, digest in heads.items():
            c.execute("UPDATE hl_audit_heads SET hash = ? WHERE organization_id = ?", (digest, organization))
        c.execute("DELETE FROM hl_meta WHERE name = 'audit_chain'")
    return records


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_with_a_chain_v1_is_migrated_once_on_start(kind: str, tmp_path: Path) -> None:
    with store(kind, tmp_path) as url:
        with application(url) as opened:
            some_history(opened)
            v2 = exported(opened)
            v1 = made_v1(opened)
        assert offline(v1).valid  # (the v1 trail as main's code chained it)

        with application(url) as opened:
            migrated = exported(opened)
            assert migrated == v2
            assert verification(opened, "acme").valid
            assert verification(opened, "globex").valid
            assert offline(migrated).valid
            db = opened.read_model.db
            with db.transaction(commit=False) as c:
                c.execute("SELECT value FROM hl_meta WHERE name = 'audit_chain'")
                assert c.fetchone()[0] == "2"
            app = opened.app
            principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
            app.publish_events(principal, [Publication("job.done", {"after": "migration"})])
            opened.read_model.catch_up()
            grown = exported(opened)
            assert len(grown) == len(v2) + 2  # the key, the event: chained on from the migrated heads
            assert offline(grown).valid
            assert verification(opened, "acme").valid

        with application(url) as opened:  # once: a second start finds chain v2 and leaves it
            assert exported(opened) == grown


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_v1_record_whose_stored_event_is_gone_is_migrated_from_its_copy_and_still_found(
    kind: str, tmp_path: Path
) -> None:
    with store(kind, tmp_path) as url:
        with application(url) as opened:
            events = some_history(opened)
            v2 = exported(opened)
            made_v1(opened)
            gone = next(e for e in v2 if e["aggregateId"] == str(events[2]))["position"]
            db = opened.read_model.db
            with db.transaction(commit=True) as c:
                c.execute(f"DELETE FROM {db.events} WHERE {db.position} = ?", (gone,))

        with application(url) as opened:
            found = verification(opened, "acme")
            assert (found.valid, found.first_invalid) == (False, gone)
            assert verification(opened, "globex").valid
            db = opened.read_model.db
            with db.transaction(commit=False) as c:
                c.execute("SELECT data_hash, hash FROM hl_audit WHERE position = ?", (gone,))
                data_hash, digest = (bytes(value).hex() for value in c.fetchone())
            kept = next(e for e in v2 if e["position"] == gone)
            assert (data_hash, digest) == (kept["dataHash"], kept["hash"])
            with pytest.raises(MissingStoredEvent, match=f"audit record {gone} "):
                exported(opened)  # (its content is nowhere else)
