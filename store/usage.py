"""When API keys were last used: one row per key beside the read model, written by the gateways.

A use changes nothing about a key, so it is not an event of it: one a minute would grow every key's
history, which authentication reads back whole. The table is not built from the log either, so a
rebuild of the read model keeps it (and losing it would lose only these times).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from store.sql import Database, at_moment, moment

CREATE = "CREATE TABLE IF NOT EXISTS hl_api_key_usage (key_id TEXT PRIMARY KEY, last_used_at TEXT NOT NULL)"
# A stored use stays unless it is at least the interval older than the new one (several gateways
# write the same key: each new time is kept at most once per interval, whoever writes it).
UPSERT = (
    "INSERT INTO hl_api_key_usage (key_id, last_used_at) VALUES (?, ?)"
    " ON CONFLICT (key_id) DO UPDATE SET last_used_at = excluded.last_used_at"
    " WHERE hl_api_key_usage.last_used_at <= ?"
)


class KeyUsageTable:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction(commit=True) as c:
            db.serialize(c)  # processes starting together create it one at a time
            c.execute(CREATE)

    def record(self, used: Mapping[UUID, datetime], every: timedelta) -> None:
        with self.db.transaction(commit=True) as c:
            for key_id, at in sorted(used.items()):  # in one order: two writers never deadlock
                c.execute(UPSERT, (key_id.hex, moment(at), moment(at - every)))

    def last_used(self, key_ids: Sequence[UUID]) -> dict[UUID, datetime]:
        wanted = [key_id.hex for key_id in key_ids]
        if not wanted:
            return {}
        with self.db.transaction(commit=False) as c:
            c.execute(
                f"SELECT key_id, last_used_at FROM hl_api_key_usage"
                f" WHERE key_id IN ({','.join('?' * len(wanted))})",
                wanted,
            )
            return {UUID(row[0]): at_moment(row[1]) for row in c.fetchall()}
