"""Engines, migrations and the reachability check, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text

import pwa_server.store
from pwa_server.store.authorities import insert_authority
from pwa_server.store.database import (
    DatabaseError,
    check,
    create_database_engine,
    current_revision,
    migrate,
    ping,
)
from pwa_server.store.tables import certificate_authorities, metadata
from pwa_server.vocabulary import AuthorityRole

MIGRATIONS = Path(pwa_server.store.__file__).parent / "migrations"
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()
NOW = dt.datetime(2025, 4, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty database."""
    opened = create_database_engine(database_url)
    yield opened
    opened.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty SQLite file."""
    opened = create_database_engine(f"sqlite:///{tmp_path / 'shomei.db'}")
    yield opened
    opened.dispose()


def check_url(url: str) -> None:
    """Open `url` as Shomei does at start-up and check it."""
    engine = create_database_engine(url)
    try:
        check(engine)
    finally:
        engine.dispose()


def test_migrate_creates_exactly_the_schema_of_the_table_definitions(engine: Engine) -> None:
    migrate(engine)

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)

    assert differences == []


def test_migrate_creates_only_the_defined_tables_and_alembic_version(engine: Engine) -> None:
    migrate(engine)

    assert set(inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}


def test_current_revision_is_none_before_migrate(engine: Engine) -> None:
    assert current_revision(engine) is None


def test_current_revision_is_the_newest_migration_after_migrate(engine: Engine) -> None:
    migrate(engine)

    assert HEAD is not None
    assert current_revision(engine) == HEAD


def test_migrate_twice_keeps_revision_schema_and_rows(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as connection:
        insert_authority(
            connection,
            name="root-1",
            role=AuthorityRole.ROOT,
            parent_id=None,
            key_token_label="shomei",
            key_label="root-1",
            key_id="00",
            key_algorithm="ec-p384",
            certificate_der=b"root",
            sha256_fingerprint="a" * 64,
            subject="CN=Root",
            not_before=NOW,
            not_after=NOW,
            created_at=NOW,
        )

    migrate(engine)

    assert current_revision(engine) == HEAD
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        rows = connection.execute(select(certificate_authorities.c.name)).all()
    assert [row.name for row in rows] == ["root-1"]


def test_check_passes_on_a_migrated_database(engine: Engine) -> None:
    migrate(engine)

    check(engine)


def test_check_on_an_empty_database_says_to_run_shomei_init(engine: Engine) -> None:
    with pytest.raises(DatabaseError, match="run 'shomei init'"):
        check(engine)


def test_ping_answers_on_an_empty_database(engine: Engine) -> None:
    ping(engine)


def test_check_reports_an_unreachable_postgresql_server_as_unreachable() -> None:
    with pytest.raises(DatabaseError, match="unreachable"):
        check_url("postgresql://postgres@127.0.0.1:1/test")


def test_ping_reports_an_unreachable_postgresql_server() -> None:
    engine = create_database_engine("postgresql://postgres@127.0.0.1:1/test")
    try:
        with pytest.raises(DatabaseError, match="unreachable"):
            ping(engine)
    finally:
        engine.dispose()


def test_a_sqlite_file_that_is_not_a_database_is_reported_as_unreachable(tmp_path: Path) -> None:
    garbage = tmp_path / "shomei.db"
    garbage.write_bytes(b"this is not an SQLite database, only text long enough " * 100)

    with pytest.raises(DatabaseError, match="unreachable"):
        check_url(f"sqlite:///{garbage}")


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("below-a-regular-file", id="parent-is-a-regular-file"),
        # /proc accepts no new directories, not even from root.
        pytest.param("/proc/shomei-does-not-exist", id="read-only-place"),
    ],
)
def test_a_sqlite_file_whose_directory_cannot_be_created_is_reported_as_unreachable(
    location: str, tmp_path: Path
) -> None:
    regular_file = tmp_path / "file"
    regular_file.write_text("a file where a directory should be\n")
    directory = regular_file if location == "below-a-regular-file" else Path(location)

    with pytest.raises(DatabaseError, match="unreachable"):
        check_url(f"sqlite:///{directory / 'shomei.db'}")


@pytest.mark.parametrize(
    "url",
    ["", "not a url", "nosuchdatabase://host/db", "postgresql+nosuchdriver://host/db"],
)
def test_create_database_engine_refuses_a_nonsense_url(url: str) -> None:
    with pytest.raises(DatabaseError, match="invalid database URL"):
        create_database_engine(url)


def test_sqlite_connections_use_write_ahead_logging(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        mode: str = connection.execute(text("PRAGMA journal_mode")).scalar_one()

    assert mode == "wal"


def test_sqlite_connections_enforce_foreign_keys(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        enforced: int = connection.execute(text("PRAGMA foreign_keys")).scalar_one()

    assert enforced == 1


def test_create_database_engine_creates_the_sqlite_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "shomei.db"

    engine = create_database_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()

    assert path.is_file()
