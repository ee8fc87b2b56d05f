"""Rows of guess throttles: failures counted per key, and when the next attempt may come.

Changed only by single UPDATEs (or the INSERT of a key's first failure), so that any number
of workers and instances count together.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pwa_server.store.tables import guess_throttles


def throttled_until(
    connection: Connection, keys: list[str], *, now: dt.datetime
) -> dt.datetime | None:
    """The latest retry time of `keys` still ahead of `now`, or None."""
    latest: dt.datetime | None = connection.execute(
        select(func.max(guess_throttles.c.retry_at)).where(
            guess_throttles.c.key.in_(keys), guess_throttles.c.retry_at > now
        )
    ).scalar_one()
    return latest


def count_failure(connection: Connection, key: str, *, now: dt.datetime) -> int:
    """Count one failure of `key`; returns its failures including this one."""
    for _ in range(2):
        counted = connection.execute(
            update(guess_throttles)
            .where(guess_throttles.c.key == key)
            .values(failures=guess_throttles.c.failures + 1, updated_at=now)
            .returning(guess_throttles.c.failures)
        ).scalar_one_or_none()
        if counted is not None:
            return int(counted)
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(guess_throttles).values(key=key, failures=1, updated_at=now)
                )
        except IntegrityError:
            continue  # another worker counted the first failure meanwhile
        return 1
    raise RuntimeError(f"cannot count a failure of {key!r}")


def set_retry_at(connection: Connection, key: str, retry_at: dt.datetime) -> None:
    """No attempt of `key` before `retry_at`."""
    connection.execute(
        update(guess_throttles).where(guess_throttles.c.key == key).values(retry_at=retry_at)
    )


def forget(connection: Connection, keys: list[str]) -> None:
    """The failures of `keys` are forgotten (a right secret)."""
    connection.execute(delete(guess_throttles).where(guess_throttles.c.key.in_(keys)))


def forget_prefix(connection: Connection, prefix: str) -> int:
    """Every key that starts with `prefix` is forgotten (an unlock); returns how many."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result = connection.execute(
        delete(guess_throttles).where(guess_throttles.c.key.like(f"{escaped}%", escape="\\"))
    )
    return int(result.rowcount)


def prune(connection: Connection, *, before: dt.datetime) -> None:
    """Forget keys whose last failure is older than `before` (their wait is over by then)."""
    connection.execute(delete(guess_throttles).where(guess_throttles.c.updated_at < before))
