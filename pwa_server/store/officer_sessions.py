"""Rows of console sessions. Ending is one conditional UPDATE (ended_at still empty), so that
a session ends once, with the first reason that came."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from pwa_server.store.tables import officer_sessions


@dataclass(frozen=True)
class SessionRow:
    """A console session as stored (its id is the token's hash, never the token)."""

    id: str
    officer_id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None
    client_address: str
    user_agent: str


def insert_session(
    connection: Connection,
    *,
    session_id: str,
    officer_id: str,
    client_address: str,
    user_agent: str,
    now: dt.datetime,
) -> None:
    """Record a session that starts now."""
    connection.execute(
        insert(officer_sessions).values(
            id=session_id,
            officer_id=officer_id,
            created_at=now,
            last_seen_at=now,
            client_address=client_address,
            user_agent=user_agent,
        )
    )


def session_by_id(connection: Connection, session_id: str) -> SessionRow | None:
    row = connection.execute(
        select(officer_sessions).where(officer_sessions.c.id == session_id)
    ).one_or_none()
    return SessionRow(**row._mapping) if row is not None else None


def touch_session(
    connection: Connection, session_id: str, *, now: dt.datetime, unless_since: dt.datetime
) -> None:
    """Note the session's use now, unless it was noted at `unless_since` or later (which
    keeps the writes to one a minute however busy the console is)."""
    table = officer_sessions
    connection.execute(
        update(table)
        .where(table.c.id == session_id, table.c.ended_at.is_(None))
        .where(table.c.last_seen_at < unless_since)
        .values(last_seen_at=now)
    )


def end_session(connection: Connection, session_id: str, *, reason: str, now: dt.datetime) -> bool:
    """End an open session; False when it had ended already."""
    table = officer_sessions
    result = connection.execute(
        update(table)
        .where(table.c.id == session_id, table.c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return result.rowcount == 1


def end_sessions_of_officer(
    connection: Connection,
    officer_id: str,
    *,
    reason: str,
    now: dt.datetime,
    keep: str | None = None,
) -> int:
    """End every open session of the officer but `keep`; how many ended."""
    table = officer_sessions
    query = update(table).where(table.c.officer_id == officer_id, table.c.ended_at.is_(None))
    if keep is not None:
        query = query.where(table.c.id != keep)
    return connection.execute(query.values(ended_at=now, end_reason=reason)).rowcount


def open_sessions_of_officer(
    connection: Connection, officer_id: str, *, seen_since: dt.datetime, created_since: dt.datetime
) -> list[SessionRow]:
    """The officer's sessions not ended, seen and started recently enough, newest first."""
    table = officer_sessions
    rows = connection.execute(
        select(table)
        .where(
            table.c.officer_id == officer_id,
            table.c.ended_at.is_(None),
            table.c.last_seen_at >= seen_since,
            table.c.created_at >= created_since,
        )
        .order_by(table.c.last_seen_at.desc())
    )
    return [SessionRow(**row._mapping) for row in rows]
