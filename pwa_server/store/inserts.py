"""An INSERT that a unique key may refuse, without spoiling the caller's transaction."""

from __future__ import annotations

from sqlalchemy import Connection, Insert
from sqlalchemy.exc import IntegrityError


def inserted(connection: Connection, statement: Insert) -> bool:
    """Run `statement` in a savepoint; False, with nothing changed, when a unique key (or
    primary key) refuses the row: the row was there already."""
    try:
        with connection.begin_nested():
            connection.execute(statement)
    except IntegrityError:
        return False
    return True
