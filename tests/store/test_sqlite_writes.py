"""SQLite writers of one process take turns on a lock instead of SQLite's sleeping busy
handler (issue 17, finding 6): a writer that waits starts as soon as the other commits."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from pwa_server.store.database import create_database_engine
from pwa_server.store.sqlite_writes import QueuedWritesDialect


def _handover_delay(engine: Engine, hold: float) -> float:
    """Seconds from one writer's commit to the end of another's write that waited for it."""
    committed = threading.Event()
    first_writing = threading.Event()
    times: dict[str, float] = {}

    def first() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
            first_writing.set()
            time.sleep(hold)
        times["committed"] = time.perf_counter()
        committed.set()

    writer = threading.Thread(target=first)
    writer.start()
    assert first_writing.wait(10)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (2)"))
    done = time.perf_counter()
    writer.join()
    return done - times["committed"]


def test_a_waiting_writer_starts_when_the_other_commits_not_after_a_sleep(
    tmp_path: Path,
) -> None:
    # SQLite's busy handler slept up to 100 ms between tries (~16 ms each under load).
    engine = create_database_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    try:
        assert isinstance(engine.dialect, QueuedWritesDialect)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        delays = [_handover_delay(engine, hold=0.3) for _ in range(5)]
        with engine.connect() as connection:
            rows: int = connection.execute(text("SELECT count(*) FROM t")).scalar_one()
    finally:
        engine.dispose()
    assert rows == 10
    assert statistics.median(delays) < 0.01, delays


def test_a_failed_write_transaction_gives_the_turn_back(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
            with pytest.raises(IntegrityError):
                connection.execute(text("INSERT INTO t VALUES (1)"))  # a duplicate key
            connection.rollback()
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (3)"))
        with engine.connect() as connection:
            values: Sequence[int] = (
                connection.execute(text("SELECT x FROM t ORDER BY x")).scalars().all()
            )
    finally:
        engine.dispose()
    assert values == [1, 3]
