"""Console sessions kept on the server: the browser holds a random token, the database its
SHA-256 (the token has 256 bits, so a fast hash leaves nothing to guess). A session ends when
the officer signs out, idles for IDLE_TIMEOUT, reaches SESSION_LIFETIME, or is ended from
another session of theirs; a copy of the cookie then names an ended row and opens nothing."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from pwa_server.audit import AuditAction
from pwa_server.officers.notices import record_account_event
from pwa_server.officers.policy import (
    IDLE_TIMEOUT,
    LAST_SEEN_INTERVAL,
    SESSION_LIFETIME,
    idle_expired,
)
from pwa_server.store import officer_sessions as store
from pwa_server.store.officer_sessions import SessionRow

_CLIENT_WIDTH = 64
_USER_AGENT_WIDTH = 255


class EndReason(enum.StrEnum):
    """Why a session ended."""

    SIGNED_OUT = "signed_out"
    IDLE = "idle"
    EXPIRED = "expired"
    SIGNED_OUT_ELSEWHERE = "signed_out_elsewhere"
    OFFICER_DISABLED = "officer_disabled"


@dataclass(frozen=True)
class ConsoleSession:
    """An open console session, as the officer's own page lists it."""

    id: str
    officer_id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    client_address: str
    user_agent: str

    @classmethod
    def from_row(cls, row: SessionRow) -> ConsoleSession:
        return cls(
            row.id,
            row.officer_id,
            row.created_at,
            row.last_seen_at,
            row.client_address,
            row.user_agent,
        )


def session_id(token: str) -> str:
    """The stored id of the session whose cookie carries `token`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class OfficerSessions:
    """Starting, resuming and ending console sessions; sign-in and sign-out are audited in
    the transaction that starts or ends the session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, officer_id: str, *, client: str, user_agent: str, now: dt.datetime) -> str:
        """A new session of the officer (just verified by their key): the token for the
        cookie, shown nowhere else."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as connection:
            store.insert_session(
                connection,
                session_id=session_id(token),
                officer_id=officer_id,
                client_address=client[:_CLIENT_WIDTH],
                user_agent=user_agent[:_USER_AGENT_WIDTH],
                now=now,
            )
            record_account_event(
                connection, officer_id, AuditAction.OFFICER_SIGNED_IN, {"client": client}, now
            )
        return token

    def resume(self, token: str, *, now: dt.datetime) -> ConsoleSession | None:
        """The open session `token` names, its use noted; None when there is none (ended,
        idle or past its lifetime, which end it now)."""
        if not token:
            return None
        key = session_id(token)
        with self.engine.connect() as connection:
            row = store.session_by_id(connection, key)
        if row is None or row.ended_at is not None:
            return None
        reason = _expiry(row, now)
        if reason is not None:
            with self.engine.begin() as connection:
                store.end_session(connection, key, reason=reason.value, now=now)
            return None
        if now - row.last_seen_at >= LAST_SEEN_INTERVAL:
            with self.engine.begin() as connection:
                store.touch_session(connection, key, now=now, unless_since=now - LAST_SEEN_INTERVAL)
        return ConsoleSession.from_row(row)

    def end(self, token: str, *, client: str, now: dt.datetime) -> None:
        """Sign out: end the session `token` names (nothing when it ended already)."""
        key = session_id(token)
        with self.engine.begin() as connection:
            row = store.session_by_id(connection, key)
            if row is None or not store.end_session(
                connection, key, reason=EndReason.SIGNED_OUT.value, now=now
            ):
                return
            record_account_event(
                connection, row.officer_id, AuditAction.OFFICER_SIGNED_OUT, {"client": client}, now
            )

    def end_others(self, token: str, *, officer_id: str, client: str, now: dt.datetime) -> int:
        """Sign out everywhere else: end every open session of the officer but this one
        (the caller checked a fresh assertion of their key); how many ended."""
        keep = session_id(token)
        with self.engine.begin() as connection:
            ended = store.end_sessions_of_officer(
                connection,
                officer_id,
                reason=EndReason.SIGNED_OUT_ELSEWHERE.value,
                now=now,
                keep=keep,
            )
            record_account_event(
                connection,
                officer_id,
                AuditAction.OFFICER_SESSIONS_ENDED,
                {"client": client, "ended": ended},
                now,
            )
        return ended

    def open_sessions(self, officer_id: str, *, now: dt.datetime) -> list[ConsoleSession]:
        """The officer's open sessions, the most recently used first."""
        with self.engine.connect() as connection:
            rows = store.open_sessions_of_officer(
                connection,
                officer_id,
                seen_since=now - IDLE_TIMEOUT,
                created_since=now - SESSION_LIFETIME,
            )
        return [ConsoleSession.from_row(row) for row in rows]


def end_sessions_of_disabled(connection: Connection, officer_id: str, now: dt.datetime) -> None:
    """In the transaction that disables the officer: their sessions end with it."""
    store.end_sessions_of_officer(
        connection, officer_id, reason=EndReason.OFFICER_DISABLED.value, now=now
    )


def _expiry(row: SessionRow, now: dt.datetime) -> EndReason | None:
    if now - row.created_at >= SESSION_LIFETIME:
        return EndReason.EXPIRED
    if idle_expired(row.last_seen_at, now=now):
        return EndReason.IDLE
    return None
