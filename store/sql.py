"""One small SQL surface over the event store's own database, SQLite or PostgreSQL.

Read models live in tables beside the stored events. Statements are written once with `?` parameters
and portable SQL (`ON CONFLICT`, no engine-specific types but the two named here); this module turns
them into what each driver wants and hands out tuple rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Cursor(Protocol):
    def execute(self, statement: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    blob: str  # the type of binary columns
    bigint: str
    events: str  # the event store's table of stored events, as SQL names it

    def transaction(self, *, commit: bool) -> Any:
        """A context manager yielding a `Cursor`: inside one transaction when `commit`; for reads,
        possibly statement by statement (PostgreSQL, READ COMMITTED: each statement its own snapshot
        either way)."""

    def serialize(self, cursor: Cursor) -> None:
        """Makes the rest of the transaction wait for any other process doing the same (schema)."""


class SQLiteDatabase:
    blob = "BLOB"
    bigint = "INTEGER"

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


class _PostgresCursor:
    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(statement.replace("?", "%s"), params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cursor.executemany(statement.replace("?", "%s"), rows)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())


class PostgresDatabase:
    blob = "BYTEA"
    bigint = "BIGINT"
    SCHEMA_LOCK = 0x486F6F6B  # any constant of ours: "Hook"

    def serialize(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(?)", (self.SCHEMA_LOCK,))

    def __init__(self, datastore: Any, events_table: str) -> None:
        self.datastore = datastore  # eventsourcing.postgres.PostgresDatastore
        self.events = f'"{datastore.schema}"."{events_table}"'

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        """Writes in a transaction; reads (`commit=False`) statement by statement on the pool's
        autocommit connection, which under READ COMMITTED sees what a transaction would (each
        statement its own snapshot) without the round trips of BEGIN and ROLLBACK."""
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as connection:
            if not commit:
                yield _PostgresCursor(connection.cursor(row_factory=tuple_row))
                return
            with connection.transaction():
                yield _PostgresCursor(connection.cursor(row_factory=tuple_row))


def database_of(recorder: Any) -> Database:
    """The database an application recorder stores its events in."""
    datastore = recorder.datastore
    if type(datastore).__name__ == "PostgresDatastore":
        return PostgresDatabase(datastore, recorder.events_table_name)
    return SQLiteDatabase(datastore, recorder.events_table_name)
