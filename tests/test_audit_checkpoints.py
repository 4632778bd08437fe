"""Signed checkpoints (the contract's "Signed checkpoints"): an export ends with an Ed25519-signed
checkpoint of each organisation's last record; `hookline audit verify --public-key` and README's
verifier refuse an export whose records and hashes were all recomputed by whoever changed them, one
whose final checkpoint is missing and one with a line removed; the signing key comes from
HOOKLINE_AUDIT_SIGNING_KEY or is generated once. Through a real `hookline serve`, on SQLite (embedded)
and PostgreSQL (distributed)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.audit import public_key_of, verify_lines
from tests.support import Receiver, Server, running_server
from tests.test_audit_chain_v2 import public_key, readme_verifier, readme_verifies
from tests.test_audit_plane import (
    GENESIS,
    canonical_json,
    create_webhook,
    line_named,
    publish,
    succeeded_deliveries,
)


def history(server: Server, receiver: Receiver) -> tuple[str, str]:
    """Two organisations with webhooks, one with delivered events; the names of both."""
    first, second = "checkpoints-acme", "checkpoints-globex"
    admin, publisher = server.key(first, "admin"), server.key(first, "publisher")
    create_webhook(server, admin, receiver.url + "/acme")
    for number in range(3):
        publish(server, publisher, alert_name=f"Störung {number}", level=number)
    succeeded_deliveries(server, admin, 3)
    create_webhook(server, server.key(second, "admin"), receiver.url + "/globex")
    return first, second


def export(server: Server, path: Path, *options: str) -> list[dict[str, Any]]:
    result = server.cli("audit", "export", "--out", str(path), *options)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text("".join(canonical_json(entry) + "\n" for entry in entries), encoding="utf-8")
    return path


def verify(server: Server, path: Path, key: str | None) -> Any:
    return server.cli("audit", "verify", str(path), *(["--public-key", key] if key else []))


def refused(server: Server, path: Path, key: str, number: int, reason: str) -> None:
    """`hookline audit verify --public-key` and README's verifier both refuse `path` naming line `number`."""
    checked = verify(server, path, key)
    assert checked.returncode == 1, (checked.stdout, checked.stderr)
    assert line_named(checked.stderr, number), checked.stderr
    assert reason in checked.stderr, checked.stderr
    by_readme = readme_verifies(readme_verifier(path.parent), path, key)
    assert by_readme.returncode != 0, by_readme.stdout
    assert line_named(by_readme.stderr, number), by_readme.stderr


def signature_holds(key: str, line: dict[str, Any]) -> bool:
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key))
    try:
        public.verify(base64.b64decode(line["signature"]), canonical_json(line["checkpoint"]).encode())
    except Exception:
        return False
    return True


def records(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in entries if "checkpoint" not in entry]


def rechained(entries: list[dict[str, Any]], signer: Ed25519PrivateKey | None) -> list[dict[str, Any]]:
    """What an attacker makes of an export: every record's dataHash and hashes recomputed, each
    checkpoint moved to its organisation's new head and re-signed with `signer`, or left with its old
    signature when None."""
    heads: dict[str, str] = {}
    forged: list[dict[str, Any]] = []
    for entry in entries:
        if "checkpoint" in entry:
            point = {**entry["checkpoint"], "hash": heads[entry["checkpoint"]["organizationId"]]}
            signature = entry["signature"]
            if signer is not None:
                signature = base64.b64encode(signer.sign(canonical_json(point).encode())).decode()
            forged.append({"checkpoint": point, "signature": signature})
            continue
        previous = heads.get(entry["organizationId"], GENESIS)
        record = {**entry, "dataHash": hashlib.sha256(canonical_json(entry["data"]).encode()).hexdigest()}
        chained = {k: v for k, v in record.items() if k not in ("hash", "previousHash", "data", "erased")}
        digest = hashlib.sha256((previous + canonical_json(chained)).encode()).hexdigest()
        heads[entry["organizationId"]] = digest
        forged.append({**record, "previousHash": previous, "hash": digest})
    return forged


def test_an_export_ends_with_a_signed_checkpoint_of_each_organisations_last_record(
    fresh_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    server = fresh_server
    first, _ = history(server, receiver)
    key = public_key(server)
    entries = export(server, tmp_path / "export.jsonl")
    kept = records(entries)
    organisations = list(dict.fromkeys(entry["organizationId"] for entry in kept))
    assert len(organisations) == 2
    assert entries[: len(kept)] == kept  # the checkpoints end the export
    closing = entries[len(kept) :]
    last = {entry["organizationId"]: entry for entry in kept}
    assert [line["checkpoint"] for line in closing] == [
        {"organizationId": o, "position": last[o]["position"], "hash": last[o]["hash"]} for o in organisations
    ]
    assert all(set(line) == {"checkpoint", "signature"} and signature_holds(key, line) for line in closing)

    checked = verify(server, tmp_path / "export.jsonl", key)
    assert checked.returncode == 0, checked.stderr
    assert "2 checkpoints (signatures checked)" in checked.stdout
    readme = readme_verifier(tmp_path)
    by_readme = readme_verifies(readme, tmp_path / "export.jsonl", key)
    assert by_readme.returncode == 0, by_readme.stderr

    own = export(server, tmp_path / "own.jsonl", "--org", first)
    assert [line["checkpoint"]["organizationId"] for line in own[len(records(own)) :]] == organisations[:1]
    assert signature_holds(key, own[-1])
    assert verify(server, tmp_path / "own.jsonl", key).returncode == 0


def test_a_forged_export_fails_on_the_signature_and_a_missing_checkpoint_or_line_is_named(
    fresh_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    server = fresh_server
    history(server, receiver)
    key = public_key(server)
    entries = export(server, tmp_path / "export.jsonl")
    number = next(n for n, entry in enumerate(entries, 1) if "Störung 1" in canonical_json(entry))
    changed = [
        json.loads(canonical_json(entry).replace("Störung 1", "Störung 7")) if n == number else entry
        for n, entry in enumerate(entries, 1)
    ]
    acme = entries[number - 1]["organizationId"]
    checkpoint = next(
        n for n, entry in enumerate(entries, 1) if entry.get("checkpoint", {}).get("organizationId") == acme
    )
    for name, signer in (("old-signature", None), ("other-key", Ed25519PrivateKey.generate())):
        forged = write(tmp_path / f"{name}.jsonl", rechained(changed, signer))
        assert verify(server, forged, None).returncode == 0  # a chain that holds: only signatures tell
        refused(server, forged, key, checkpoint, "signature does not hold")

    # the final checkpoint missing: the organisation's last record is named
    globex = entries[-1]["checkpoint"]["organizationId"]
    assert globex != acme
    globex_last = max(n for n, entry in enumerate(entries, 1) if entry.get("organizationId") == globex)
    unsigned = write(tmp_path / "unsigned.jsonl", entries[:-1])
    assert verify(server, unsigned, None).returncode == 0  # without the key, checkpoints are not required
    refused(server, unsigned, key, globex_last, "not followed by a signed checkpoint")

    # a record removed from the middle: the next record of its organisation no longer follows
    middle = write(tmp_path / "middle.jsonl", entries[: number - 1] + entries[number:])
    following = next(
        n for n, entry in enumerate(entries[number:], number) if entry.get("organizationId") == acme
    )
    refused(server, middle, key, following, "previousHash does not continue the chain")

    # the organisation's last record removed: its checkpoint no longer continues the chain
    acme_last = max(n for n, entry in enumerate(entries, 1) if entry.get("organizationId") == acme)
    tail = write(tmp_path / "tail.jsonl", entries[: acme_last - 1] + entries[acme_last:])
    refused(server, tail, key, checkpoint - 1, "the checkpoint does not continue the chain")
    assert verify(server, tail, None).returncode == 1


def test_the_public_key_command_prints_what_the_configured_signing_key_implies(tmp_path: Path) -> None:
    seed = os.urandom(32)
    given = base64.b64encode(seed).decode()
    implied = base64.b64encode(Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw())
    with running_server(tmp_path, "embedded", HOOKLINE_AUDIT_SIGNING_KEY=given) as server:
        printed = server.cli("audit", "public-key")
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout == implied.decode() + "\n"  # one line, nothing else
        server.key("checkpoints-env", "admin")
        closing = export(server, tmp_path / "export.jsonl")[-1]
        assert signature_holds(implied.decode(), closing)
        assert not (tmp_path / "var" / "audit-signing.key").exists()

    bad = "s3cret-but-not-a-key"
    environment = {**server.env, "HOOKLINE_AUDIT_SIGNING_KEY": bad}
    for args in (("audit", "public-key"), ("audit", "export")):
        failed = Server(directory=tmp_path, env=environment).cli(*args)
        assert failed.returncode == 2, failed
        assert "HOOKLINE_AUDIT_SIGNING_KEY must be base64 of 32 raw bytes" in failed.stderr
        assert bad not in failed.stderr + failed.stdout
    wrong = verify(server, tmp_path / "export.jsonl", "bm90IGEga2V5")
    assert wrong.returncode == 2, wrong.stderr
    assert "base64 of 32 raw bytes" in wrong.stderr


def test_the_signing_key_is_generated_once_and_reused_across_restarts(
    fresh_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    server = fresh_server
    path = server.directory / "var" / "audit-signing.key"
    assert not path.exists()  # made on first use, not by serve
    first = server.cli("audit", "public-key")
    assert first.returncode == 0, first.stderr
    assert "generated a key for signing the audit export's checkpoints" in first.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text()
    assert (
        base64.b64encode(
            Ed25519PrivateKey.from_private_bytes(base64.b64decode(stored)).public_key().public_bytes_raw()
        ).decode()
        == first.stdout.strip()
    )

    server.key("checkpoints-restart", "admin")
    server.stop()
    server.start()
    server.key("checkpoints-restart", "viewer")
    again = server.cli("audit", "public-key")
    assert (again.returncode, again.stdout) == (0, first.stdout)
    assert "generated" not in again.stderr
    assert path.read_text() == stored
    export(server, tmp_path / "export.jsonl")
    checked = verify(server, tmp_path / "export.jsonl", first.stdout.strip())
    assert checked.returncode == 0, checked.stderr


def test_the_verifier_continues_a_chain_from_the_checkpoint_of_a_run_of_removed_records(
    tmp_path: Path,
) -> None:
    """Retention's shape, by the contract: a removed run is replaced by a checkpoint of the last kept
    record before it and one of its last removed record, and the chain continues from the latter."""
    signer = Ed25519PrivateKey.generate()
    key = base64.b64encode(signer.public_key().public_bytes_raw()).decode()
    organization = "00000000-0000-4000-8000-000000000001"
    chain = rechained(
        [
            {"position": n, "organizationId": organization, "eventType": "Event.Published", "data": {"n": n}}
            for n in range(1, 6)
        ],
        None,
    )

    def checkpoint(entry: dict[str, Any]) -> dict[str, Any]:
        point = {k: entry[k] for k in ("organizationId", "position", "hash")}
        return {
            "checkpoint": point,
            "signature": base64.b64encode(signer.sign(canonical_json(point).encode())).decode(),
        }

    kept = [chain[0], checkpoint(chain[0]), checkpoint(chain[2]), *chain[3:], checkpoint(chain[4])]
    path = write(tmp_path / "removed-run.jsonl", kept)
    assert verify_lines(path.read_text().splitlines(), public_key_of(key)).valid
    assert readme_verifies(readme_verifier(tmp_path), path, key).returncode == 0

    # a lone checkpoint cannot skip records: the run's first checkpoint must vouch for the head first
    lone = write(tmp_path / "lone.jsonl", [chain[0], checkpoint(chain[2]), *chain[3:], checkpoint(chain[4])])
    found = verify_lines(lone.read_text().splitlines(), public_key_of(key))
    assert (found.valid, found.first_invalid) == (False, 2)
    assert readme_verifies(readme_verifier(tmp_path), lone, key).returncode != 0
