"""What a run leaves in the store: the bytes the store takes in all and table by table (indexes counted
with their table) and its rows, read before the measured events and once the processes have stopped, so
that bytes per delivery and each table's share of them compare between store designs."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

SYSTEM_SCHEMAS = ["pg_catalog", "information_schema", "pg_toast"]


def sqlite_footprint(path: Path, at_rest: bool) -> dict[str, Any]:
    """page_count x page_size, that less the free pages, and by table from the `dbstat` virtual table
    (else the sum of its rows' lengths). At rest (no process has the store open) after
    `PRAGMA wal_checkpoint(TRUNCATE)`; else as a reader sees it, the WAL included."""
    with closing(sqlite3.connect(path)) as connection:
        if at_rest:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size, pages, free = (
            int(connection.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("page_size", "page_count", "freelist_count")
        )
        listed = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        tables = [str(name) for (name,) in connection.execute(listed)]
        rows = {t: int(connection.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}
        try:
            sized = connection.execute(
                "SELECT COALESCE(m.tbl_name, s.name), SUM(s.pgsize) FROM dbstat AS s"
                " LEFT JOIN sqlite_schema AS m ON m.name = s.name GROUP BY 1"
            ).fetchall()
            sizes, how = {str(name): int(size) for name, size in sized}, "dbstat"
        except sqlite3.OperationalError:  # an SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            sizes, how = {t: row_bytes(connection, t) for t in tables}, "row lengths"
    return {
        "engine": "sqlite",
        "measured_by": how,
        "bytes": pages * page_size,
        "bytes_in_use": (pages - free) * page_size,
        "file_bytes": path.stat().st_size,
        "tables": {name: {"bytes": size, "rows": rows.get(name)} for name, size in sizes.items()},
    }


def row_bytes(connection: sqlite3.Connection, table: str) -> int:
    """The sum of a table's values' lengths (no page, record header or index counted)."""
    columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
    if not columns:
        return 0
    total = " + ".join(f'COALESCE(LENGTH(CAST("{c}" AS BLOB)), 0)' for c in columns)
    return int(connection.execute(f'SELECT COALESCE(SUM({total}), 0) FROM "{table}"').fetchone()[0])


def postgres_footprint(database_url: str) -> dict[str, Any]:
    """After a VACUUM: pg_total_relation_size (heap, TOAST, indexes) of each of the database's tables,
    their sum, and pg_database_size (which also counts the catalogue's few MB)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM")
        listed = connection.execute(
            "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid) FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL(%s)",
            (SYSTEM_SCHEMAS,),
        ).fetchall()
        tables: dict[str, dict[str, int | None]] = {}
        for schema, table, size in listed:
            counted = connection.execute(f'SELECT COUNT(*) FROM "{schema}"."{table}"').fetchone()
            name = table if schema == "public" else f"{schema}.{table}"
            tables[name] = {"bytes": int(size), "rows": int(counted[0]) if counted else None}
        database = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    total = sum(int(t["bytes"] or 0) for t in tables.values())
    return {
        "engine": "postgresql",
        "measured_by": "pg_total_relation_size",
        "bytes": total,
        "bytes_in_use": total,
        "database_bytes": int(database[0]) if database else None,
        "tables": tables,
    }


def summary(
    after: dict[str, Any], before: dict[str, Any], stored: tuple[int, int], run: tuple[int, int]
) -> dict[str, Any]:
    """The footprint after the run, per delivery and per event: over all the store holds (`stored`:
    deliveries, events; the warm-up's and the store's fixed part, a page or more per table and
    index, included) and, as `added_…`, over what the measured run (`run`) added to it since `before`."""
    deliveries, events = stored
    run_deliveries, run_events = run
    tables = {}
    for name, table in sorted(after["tables"].items(), key=lambda item: -item[1]["bytes"]):
        earlier = before["tables"].get(name, {"bytes": 0, "rows": 0})
        tables[name] = {
            **table,
            "bytes_per_delivery": share(table["bytes"], deliveries),
            "bytes_per_event": share(table["bytes"], events),
            "added_bytes": table["bytes"] - earlier["bytes"],
            "added_rows": None if table["rows"] is None else table["rows"] - (earlier["rows"] or 0),
        }
    added = after["bytes_in_use"] - before["bytes_in_use"]
    return {
        **after,
        "deliveries_stored": deliveries,
        "events_stored": events,
        "bytes_per_delivery": share(after["bytes"], deliveries),
        "bytes_in_use_per_delivery": share(after["bytes_in_use"], deliveries),
        "bytes_per_event": share(after["bytes"], events),
        "added_bytes": added,
        "added_bytes_per_delivery": share(added, run_deliveries),
        "added_bytes_per_event": share(added, run_events),
        "tables": tables,
    }


def share(size: int, count: int) -> float | None:
    return round(size / count, 1) if count else None
