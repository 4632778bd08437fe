"""The audit trail as records anyone can check: one record per stored event, chained by hashes (chain v2).

Each organisation's records form a chain in store order. A record is a JSON object (`position`,
`organizationId`, `aggregateId`, `aggregateType`, `version`, `eventType`, `recordedAt`, `actor`,
`data`, `dataHash`, `erased`); `dataHash` is the hex SHA-256 of `data`'s canonical JSON (keys sorted,
no spaces, non-ASCII kept as is), and the record's `hash` is the hex SHA-256 of the UTF-8 bytes of
`previousHash` followed by the canonical JSON of its chained form: the record without `hash`,
`previousHash`, `data` and `erased`. Data enters the chain through its hash alone, so that erasing it
(`data` null, `erased` true) changes no hash. The first record of an organisation has `previousHash` =
64 zeros. Secrets in `data` are replaced by "[redacted]", and secret header values and the secrets of
target URLs are masked as `domain.masking` says, for every reader: `dataHash` is computed over the
masked data, so an export verifies and holds no secret. Exports of chain v1 (no `dataHash`: the hash
taken over the whole record, `data` included) still verify.

An export ends with a signed checkpoint per organisation (`{"checkpoint": {"organizationId",
"position", "hash"}, "signature"}`, Ed25519 over the checkpoint's canonical JSON): it vouches that the
organisation's chain reached `hash` at record `position`, so that a chain recomputed by whoever changed
the records fails on the signature. A checkpoint either vouches for the record before it, or, right
after one that did (or as its organisation's first line), continues the chain from its `hash` past
records removed by retention.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.masking import REDACTED as REDACTED  # the audit's marker too
from domain.masking import is_secret_header, masked_url

GENESIS = "0" * 64
SYSTEM = "system"
SECRET_FIELDS = frozenset(
    {
        "signing_secret",
        "new_signing_secret",
        "new_secret",
        "previous_secret",
        "key_hash",
        "secret",
        "password",
        "token",
        "headerValue",
    }
)
_NOT_DATA = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "actor", "erased"}
)
OUTSIDE_CHAIN = frozenset({"hash", "previousHash", "data", "erased"})


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(value: Any) -> bytes:
    """`canonical` as UTF-8, written by orjson when it writes the same text (several times faster):
    it does for plain JSON values except floats below 1e-4 (`0.00001` for `1e-05`), floats that are
    not finite, integers beyond 64 bits and keys that are not strings."""
    if _orjson_writes_as_json(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate
            pass
    return canonical(value).encode("utf-8")


def _orjson_writes_as_json(value: Any) -> bool:
    # A walk with a list for a stack, not a recursion of generators: it runs for every audit record.
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict:
            pending.extend(item.values())  # (orjson refuses keys that are not strings)
        elif kind is list:
            pending.extend(item)
        elif kind is float:
            if not (item == 0 or (abs(item) >= 1e-4 and math.isfinite(item))):
                return False
        else:
            return False  # anything else (tuples, subclasses, other types) as the json module does it
    return True


def chain_hash(previous_hash: str, record: Mapping[str, Any]) -> str:
    """The hash that follows `previous_hash` for a record: chain v2 passes its chained form, v1 the
    whole record."""
    return hashlib.sha256(previous_hash.encode("utf-8") + canonical_bytes(record)).hexdigest()


def data_hash(data: Any) -> str:
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def chained_form(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a record's hash covers: all of it but its hashes and its data (which `dataHash` stands for)."""
    return {k: v for k, v in record.items() if k not in OUTSIDE_CHAIN}


def record_hash(previous_hash: str, record: Mapping[str, Any], digest_of_data: str) -> str:
    """A record's hash in chain v2: its chained form with `dataHash`, after `previous_hash`."""
    return chain_hash(previous_hash, chained_form({**record, "dataHash": digest_of_data}))


_AS_IS = frozenset({str, int, float, bool, type(None)})
_AS_TEXT: Mapping[type, Any] = MappingProxyType({UUID: str, datetime: datetime.isoformat})


def jsonable(value: Any) -> Any:
    """Plain JSON values: ids and times as strings, secrets redacted wherever they are nested.

    Plain dicts, lists and scalars, which most of an event is, are told by their exact type before
    anything is asked of the abstract base classes (an `isinstance` of `Mapping` costs a microsecond
    for every value that is not one)."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is dict:
        return _data(value.items())
    if kind is list:
        return [v if type(v) in _AS_IS else jsonable(v) for v in value]
    # (A mapping proxy answers `in` and `[]` at a dict's speed, `get` at several times it.)
    return _AS_TEXT[kind](value) if kind in _AS_TEXT else _converted(value)


def _data(items: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    return {
        k if type(k) is str else str(k): (
            _MASKS[k](v) if k in _MASKS else v if type(v) in _AS_IS else jsonable(v)
        )
        for k, v in items
    }


def _redacted(_: Any) -> str:
    return REDACTED


def _masked_headers(value: Any) -> Any:
    """A webhook's headers as recorded (`[{"name", "value"}, …]`), secret ones' values masked."""
    converted = jsonable(value)
    if type(converted) is not list:
        return converted
    return [
        {**h, "value": REDACTED}
        if type(h) is dict and "value" in h and type(h.get("name")) is str and is_secret_header(h["name"])
        else h
        for h in converted
    ]


def _masked_target(value: Any) -> Any:
    return masked_url(value) if type(value) is str else jsonable(value)


# Keys whose values are secrets or hold some, wherever they are nested (one lookup per key).
_MASKS: Mapping[Any, Callable[[Any], Any]] = MappingProxyType(
    {
        **dict.fromkeys(SECRET_FIELDS, _redacted),
        "headers": _masked_headers,
        "target_url": _masked_target,
    }
)


def _converted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _data(value.items())
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    return value


def named_owner(domain_event: object) -> UUID | None:
    """The organisation an event names as its owner: an organisation's creation names itself, other
    creation events carry `organization_id`; later events name none (their aggregate's owner holds)."""
    if type(domain_event).__qualname__ == "Organization.Created":
        aggregate_id: UUID = getattr(domain_event, "originator_id")  # noqa: B009
        return aggregate_id
    named = getattr(domain_event, "organization_id", None)
    return named if isinstance(named, UUID) else None


def is_erased(domain_event: object) -> bool:
    """Whether a stored event's data was erased: its stored state says so, and holds what is kept."""
    return getattr(domain_event, "erased", False) is True


def record_of(position: int, organization_id: UUID, domain_event: object) -> dict[str, Any]:
    """The audit record of one stored domain event, without `dataHash` and its hashes: `data` is None
    when the stored event's data was erased."""
    attributes = vars(domain_event)
    event_type = type(domain_event).__qualname__
    erased = is_erased(domain_event)
    return {
        "position": position,
        "organizationId": str(organization_id),
        "aggregateId": str(attributes["originator_id"]),
        "aggregateType": event_type.split(".")[0],
        "version": attributes["originator_version"],
        "eventType": event_type,
        "recordedAt": attributes["timestamp"].isoformat(),
        "actor": attributes.get("actor") or SYSTEM,
        "data": None if erased else _data((k, v) for k, v in attributes.items() if k not in _NOT_DATA),
        "erased": erased,
    }


@dataclass(frozen=True)
class Verification:
    valid: bool
    checked: int
    first_invalid: int | None = None  # a position, or a line number for files
    reason: str | None = None
    checkpoints: int = 0


def checkpoint_line(entry: Mapping[str, Any], signing_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed checkpoint of an exported record: its organisation's chain reached its hash there."""
    checkpoint = {
        "organizationId": entry["organizationId"],
        "position": entry["position"],
        "hash": entry["hash"],
    }
    signature = signing_key.sign(canonical(checkpoint).encode("utf-8"))
    return {"checkpoint": checkpoint, "signature": base64.b64encode(signature).decode("ascii")}


def with_checkpoints(
    entries: Iterable[Mapping[str, Any]], signing_key: Ed25519PrivateKey
) -> Iterator[Mapping[str, Any]]:
    """An export's lines: its records, then a signed checkpoint of each organisation's last record.
    An entry marked `removed` stands for a run of records removed by retention (its last record's
    position and hash): it becomes a checkpoint of the organisation's record before it (if any),
    then a checkpoint of the run's last record, from which the chain goes on."""
    last: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        organization = entry["organizationId"]
        if entry.get("removed"):
            before = last.get(organization)
            if before is not None and not before.get("removed"):
                yield checkpoint_line(before, signing_key)
            yield checkpoint_line(entry, signing_key)
        else:
            yield entry
        last[organization] = entry
    for entry in last.values():
        if not entry.get("removed"):
            yield checkpoint_line(entry, signing_key)


def public_key_of(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key given as base64 of its 32 raw bytes; ValueError otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("a public key is base64 of 32 raw bytes (as `hookline audit public-key` prints)")
    return Ed25519PublicKey.from_public_bytes(raw)


Head = tuple[int, str]  # where an organisation's chain has got: a position and its hash


def verify_lines(lines: Iterable[str], public_key: Ed25519PublicKey | None = None) -> Verification:
    """Checks exported JSON Lines with nothing but this file; line numbers start at 1. A line without
    `dataHash` is a record of chain v1 (an export made before chain v2). With `public_key`, every
    checkpoint's signature must hold and each organisation's last record be followed by its checkpoint;
    without, checkpoints are taken as they are (the chain through them is still checked)."""
    heads: dict[str, Head] = {}
    unvouched: dict[str, int | None] = {}  # organisation: the line of its last record, until vouched for
    vouched: str | None = None  # the organisation whose head the previous line vouched for
    checked = checkpoints = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            is_checkpoint = "checkpoint" in entry
        except (ValueError, TypeError):
            return Verification(False, checked, number, "not an audit record")
        if is_checkpoint:
            point, reason = _checkpoint(entry, heads, vouched, public_key)
            if point is None:
                return Verification(False, checked, number, reason)
            organization, reached = point
            vouched = organization if heads.get(organization) == reached else None
            heads[organization], unvouched[organization] = reached, None
            checkpoints += 1
            continue
        vouched = None
        reason, head = _record(entry, heads)
        if head is None:
            return Verification(False, checked, number, reason)
        organization = str(entry["organizationId"])
        heads[organization], unvouched[organization] = head, number
        checked += 1
    left = [number for number in unvouched.values() if number is not None]
    if public_key is not None and left:
        reason = "not followed by a signed checkpoint of its organisation's last record"
        return Verification(False, checked, min(left), reason, checkpoints)
    return Verification(True, checked, checkpoints=checkpoints)


def _checkpoint(
    entry: Any, heads: Mapping[str, Head], vouched: str | None, public_key: Ed25519PublicKey | None
) -> tuple[tuple[str, Head] | None, str]:
    """A checkpoint line's organisation and the head it names, or None and why it is refused."""
    try:
        point = entry["checkpoint"]
        organization, position, digest = str(point["organizationId"]), point["position"], point["hash"]
        signature = base64.b64decode(entry["signature"], validate=True)
        if type(position) is not int or type(digest) is not str or len(point) != 3:
            raise TypeError
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None, "not a checkpoint"
    if public_key is not None:
        try:
            public_key.verify(signature, canonical(point).encode("utf-8"))
        except InvalidSignature:
            return None, "the checkpoint's signature does not hold"
    reached, head = (position, digest), heads.get(organization)
    continues = head is None or (vouched == organization and position > head[0])
    if reached != head and not continues:
        return None, "the checkpoint does not continue the chain"
    return (organization, reached), ""


def _record(entry: Any, heads: Mapping[str, Head]) -> tuple[str, Head | None]:
    """A record line's new head for its organisation, or None and why it is refused."""
    try:
        v2 = "dataHash" in entry
        if v2:
            record = chained_form(entry)
        else:
            record = {k: v for k, v in entry.items() if k not in ("hash", "previousHash")}
        organization = str(record["organizationId"])
        previous, claimed, position = entry["previousHash"], entry["hash"], record["position"]
        data = entry.get("data")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "not an audit record", None
    head = heads.get(organization)
    if previous != (GENESIS if head is None else head[1]):
        return "previousHash does not continue the chain", None
    if chain_hash(previous, record) != claimed:
        return "hash does not match the record", None
    if v2 and data is not None and data_hash(data) != entry["dataHash"]:
        return "data does not match dataHash", None
    return "", (position, claimed)
