"""Engines, migrations and the reachability check, for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.store import sqlite_writes

_MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(ShomeiError):
    """The database cannot be reached or is not in the expected state."""

    kind = ErrorKind.UNAVAILABLE


def create_database_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection,
    and writers that queue in the process (sqlite_writes.py)."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", None):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                _make_parent(Path(database))
            if parsed.get_driver_name() == "pysqlite":
                parsed = parsed.set(drivername=sqlite_writes.register())
            engine = create_engine(parsed, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(parsed, pool_pre_ping=True, connect_args=_connect_args(parsed))
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        raise DatabaseError(f"invalid database URL: {error}") from None


def _make_parent(database: Path) -> None:
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(
            f"database unreachable: cannot create {database.parent}: {error.strerror}"
        ) from None


def _connect_args(url: Any) -> dict[str, Any]:
    return {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; several worker processes share the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _alembic_config(connection: Any) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
    except SQLAlchemyError as error:
        raise DatabaseError(f"cannot migrate the database: {_reason(error)}") from None


def current_revision(engine: Engine) -> str | None:
    """The schema's migration revision, or None for an empty database."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        raise DatabaseError(f"database unreachable: {_reason(error)}") from None


def ping(engine: Engine) -> None:
    """Raise DatabaseError unless the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        raise DatabaseError(f"database unreachable: {_reason(error)}") from None


def check(engine: Engine) -> None:
    """Raise DatabaseError unless the database answers and its schema is current."""
    current = current_revision(engine)
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    if current != head:
        raise DatabaseError(
            f"database schema is at {current or 'nothing'}, expected {head}: run 'shomei init'"
        )


def _reason(error: SQLAlchemyError) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump and help link."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__
