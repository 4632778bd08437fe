"""The library's PostgreSQL recorder, inserting new events in one round trip, in binary.

`eventsourcing.postgres` inserts a batch of events in a transaction that takes the events table's lock
(so that notification ids become visible in order), inserts, returns the ids to the client, and commits
when the client sends COMMIT. Two things cost here:
- the lock is held while the ids travel to the client and COMMIT travels back: on a busy machine, a
  scheduling delay of the client's thread holds every other writer (worker, gateway) that long;
- the events go as an array of a composite type in text (`%s` for a list): each encrypted state
  written out as hex and quoted twice, and parsed back by PostgreSQL (100 events of 1.5 KB: 6 ms of
  Python and 10 ms of PostgreSQL, against 0.5 ms and 1 ms in binary).
So the same statements (lock timeout, table lock, NOTIFY, INSERT ... RETURNING) run in one function of
ours, called as one statement in autocommit with the events in binary (`%b`): the transaction ends as
the statement does, without waiting for the client. Same rows, same lock, same ids, same errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier


class BinaryInsertRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        function = Identifier(f"hl_insert_{self.events_table_name}")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[])"
                " RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN"
                " SET LOCAL lock_timeout = '{lock_timeout}s';"
                " LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
                " NOTIFY {channel};"
                " RETURN QUERY INSERT INTO {schema}.{table} AS t"
                " (originator_id, originator_version, topic, state)"
                " SELECT originator_id, originator_version, topic, state FROM unnest(events)"
                " RETURNING notification_id;"
                " END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                event=Identifier(self.stored_event_type_name),
                lock_timeout=self.datastore.lock_timeout,
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        self.insert_in_one_statement = SQL("SELECT n FROM {schema}.{function}(%b) AS n").format(
            schema=schema, function=function
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return None
        events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self.insert_in_one_statement, (events,), prepare=True)
            return [row["n"] for row in cursor.fetchall()]
