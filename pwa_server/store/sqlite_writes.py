"""SQLite writers that queue instead of sleep-polling.

SQLite lets one connection write at a time. A second writer waits in SQLite's busy handler,
which sleeps and polls (strace showed sleeps of ~16 ms per try while the lock was free
again after ~1 ms): under load most of a download's time went to those sleeps. Here a
transaction that writes first takes this process's writer lock, in the order threads come,
then `BEGIN IMMEDIATE`, so that the busy handler only ever waits for another process.

The driver is left in autocommit (isolation_level None) and the transaction begun here just
before the first INSERT, UPDATE, DELETE or REPLACE, as pysqlite itself does; reads outside a
write run as before, without a transaction and without the lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

DRIVER_NAME = "sqlite+shomei"
# As long as SQLite's own busy timeout (database.py): a writer gives up after the same wait.
WRITER_TIMEOUT = 30.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class QueuedWritesDialect(SQLiteDialect_pysqlite):
    """pysqlite whose write transactions take a process-wide lock, then BEGIN IMMEDIATE.

    (SQLAlchemy's dialect methods carry no annotations: their calls are untyped for mypy.)
    """

    supports_statement_cache = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._writer = threading.Lock()
        # ids of the DBAPI connections that hold the writer lock now.
        self._writing: set[int] = set()

    def on_connect(self) -> Callable[[Any], None]:
        previous = super().on_connect()

        def connect(dbapi_connection: Any) -> None:
            if previous is not None:
                previous(dbapi_connection)
            dbapi_connection.isolation_level = None

        return connect

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        self._begin_if_writing(cursor, statement)
        super().do_execute(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        self._begin_if_writing(cursor, statement)
        super().do_execute_no_params(cursor, statement, context)  # type: ignore[no-untyped-call]

    def do_executemany(
        self, cursor: Any, statement: str, parameters: Any, context: Any = None
    ) -> None:
        self._begin_if_writing(cursor, statement)
        super().do_executemany(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    def do_commit(self, dbapi_connection: Any) -> None:
        try:
            super().do_commit(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self._release(dbapi_connection)

    def do_rollback(self, dbapi_connection: Any) -> None:
        try:
            super().do_rollback(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self._release(dbapi_connection)

    def do_close(self, dbapi_connection: Any) -> None:
        try:
            super().do_close(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self._release(dbapi_connection)

    def _begin_if_writing(self, cursor: Any, statement: str) -> None:
        connection = cursor.connection
        if connection.in_transaction or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        if not self._writer.acquire(timeout=WRITER_TIMEOUT):
            raise sqlite3.OperationalError("database is locked (no writer turn in this process)")
        self._writing.add(id(connection))
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release(connection)
            raise

    def _release(self, dbapi_connection: Any) -> None:
        # The pool's proxy on commit and rollback, the driver's connection on close.
        raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
        if id(raw) in self._writing:
            self._writing.discard(id(raw))
            self._writer.release()


def register() -> str:
    """Make DRIVER_NAME known to SQLAlchemy (again is harmless); returns it."""
    registry.register("sqlite.shomei", __name__, "QueuedWritesDialect")
    return DRIVER_NAME
