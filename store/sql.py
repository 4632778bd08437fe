"""One small SQL surface over the event store's own database, SQLite or PostgreSQL.

Read models live in tables beside the stored events. Statements are written once with `?` parameters
and portable SQL (`ON CONFLICT`, no engine-specific types but the two named here); this module turns
them into what each driver wants and hands out tuple rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol


def moment(value: datetime) -> str:
    """A UTC time as the read model's tables keep every time: text of fixed width, to the microsecond,
    that sorts as the time does (so SQL compares them): what strftime("%Y-%m-%dT%H:%M:%S.%fZ") writes,
    without strftime's cost."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def at_moment(text: str) -> datetime:
    """The time a `moment` stands for (in UTC)."""
    return datetime.fromisoformat(text)


class Cursor(Protocol):
    def execute(self, statement: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    blob: str  # the type of binary columns
    bigint: str
    events: str  # the event store's table of stored events, as SQL names it
    position: str  # its column of notification ids (a stored event's position)

    def transaction(self, *, commit: bool) -> Any:
        """A context manager yielding a `Cursor`: inside one transaction when `commit`; for reads,
        possibly statement by statement (PostgreSQL, READ COMMITTED: each statement its own snapshot
        either way)."""

    def serialize(self, cursor: Cursor) -> None:
        """Makes the rest of the transaction wait for any other process doing the same (schema)."""


class SQLiteDatabase:
    blob = "BLOB"
    bigint = "INTEGER"
    position = "rowid"

    def serialize(self, cursor: Cursor) -> None:
        # Any write takes SQLite's one write lock for the rest of the transaction.
        cursor.execute("CREATE TABLE IF NOT EXISTS hl_lock (id INTEGER PRIMARY KEY)")

    def __init__(self, datastore: Any, events_table: str) -> None:
        self.datastore = datastore  # eventsourcing.sqlite.SQLiteDatastore
        self.events = f'"{events_table}"'

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor


# An insert of one row's values, which a batch of rows can take as one column array each.
_ROW_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(\?(?:, \?)*\)([^?]*)", re.DOTALL)


class _PostgresCursor:
    def __init__(self, cursor: Any, column_types: dict[str, dict[str, str]]) -> None:
        self.cursor = cursor
        self.column_types = column_types  # table -> column -> SQL type, shared by the database's cursors

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(statement.replace("?", "%s"), params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Rows of an `INSERT ... VALUES (?, ...)` go in one statement, a binary array per column
        (`unnest`), since psycopg's executemany sends and parses each row on its own, at several
        times the client's and the server's CPU per row. Like a loop of single inserts, except that the
        rows must not repeat a key their `ON CONFLICT ... DO UPDATE` names (PostgreSQL refuses that
        in one statement; every caller writes one row per key)."""
        insert = _ROW_INSERT.fullmatch(statement)
        if insert is None or len(rows) < 2:
            self.cursor.executemany(statement.replace("?", "%s"), rows)
            return
        table, listed, rest = insert.groups()
        columns = [name.strip() for name in listed.split(",")]
        if statement.count("?") != len(columns):
            raise ValueError(f"an insert into {table} names {len(columns)} columns for its values")
        types = self._types(table)
        unknown = [column for column in columns if column not in types]
        if unknown:
            raise ValueError(f"{table} has no column {', '.join(unknown)}")
        arrays = ", ".join(f"%b::{types[column]}[]" for column in columns)
        self.cursor.execute(
            f"INSERT INTO {table} ({listed}) SELECT * FROM unnest({arrays}){rest}",
            [list(values) for values in zip(*rows, strict=True)],
        )

    def _types(self, table: str) -> dict[str, str]:
        """The table's column types, read once from the catalogue (not kept while it has none: a table
        that does not exist yet)."""
        types = self.column_types.get(table)
        if types is None:
            self.cursor.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
            types = dict(self.cursor.fetchall())
            if types:
                self.column_types[table] = types
        return types

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())


class PostgresDatabase:
    blob = "BYTEA"
    bigint = "BIGINT"
    position = "notification_id"
    SCHEMA_LOCK = 0x486F6F6B  # any constant of ours: "Hook"

    def serialize(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(?)", (self.SCHEMA_LOCK,))

    def __init__(self, datastore: Any, events_table: str) -> None:
        self.datastore = datastore  # eventsourcing.postgres.PostgresDatastore
        self.events = f'"{datastore.schema}"."{events_table}"'
        self.column_types: dict[str, dict[str, str]] = {}

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        """Writes in a transaction; reads (`commit=False`) statement by statement on the pool's
        autocommit connection, which under READ COMMITTED sees what a transaction would (each
        statement its own snapshot) without the round trips of BEGIN and ROLLBACK."""
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as connection:
            if not commit:
                yield _PostgresCursor(connection.cursor(row_factory=tuple_row), self.column_types)
                return
            with connection.transaction():
                yield _PostgresCursor(connection.cursor(row_factory=tuple_row), self.column_types)


def database_of(recorder: Any) -> Database:
    """The database an application recorder stores its events in."""
    datastore = recorder.datastore
    if type(datastore).__name__ == "PostgresDatastore":
        return PostgresDatabase(datastore, recorder.events_table_name)
    return SQLiteDatabase(datastore, recorder.events_table_name)
