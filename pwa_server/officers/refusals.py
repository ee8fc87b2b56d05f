"""Refused console sign-ins, aggregated: anyone can send refused assertions, and each audit
event stays for good, so one event per refusal would let a stranger flood the log (500 in
3.6 s). Each refusal is counted per client address, minute and reason in the database (for
every worker and instance), and each address's minute becomes one audit event with the
counts, written once the minute is over."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine

from pwa_server.audit import ActorKind, AuditAction, Outcome, record
from pwa_server.store import sign_in_refusals as store
from pwa_server.store.sign_in_refusals import RefusalWindow

_CLIENT_WIDTH = 64
_REASON_WIDTH = 64


def _minute(now: dt.datetime) -> int:
    return int(now.timestamp()) // 60


class SignInRefusals:
    """Counting refused sign-ins and writing their minutes to the audit log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def count(self, *, client: str, reason: str, now: dt.datetime) -> None:
        """Count one refused sign-in; minutes that are over are written first."""
        self.flush(now=now)
        with self.engine.begin() as connection:
            store.count_refusal(
                connection, client[:_CLIENT_WIDTH], _minute(now), reason[:_REASON_WIDTH]
            )

    def flush(self, *, now: dt.datetime, including_this_minute: bool = False) -> int:
        """Write every counted minute that is over (and, when asked, this one so far: the
        audit page shows what happened up to now) as one event each; how many were written."""
        cutoff = _minute(now) + (1 if including_this_minute else 0)
        written = 0
        with self.engine.begin() as connection:
            for client, window_start in store.windows_before(connection, cutoff):
                window = store.take_window(connection, client, window_start)
                if window is not None:
                    _record(connection, window, now)
                    written += 1
        return written


def _record(connection: Connection, window: RefusalWindow, now: dt.datetime) -> None:
    started = dt.datetime.fromtimestamp(window.window_start * 60, dt.UTC)
    record(
        connection,
        # Unauthenticated: whoever answered, no officer was proven.
        actor_kind=ActorKind.USER,
        actor="unknown",
        action=AuditAction.OFFICER_SIGN_IN_FAILED,
        outcome=Outcome.FAILURE,
        details={
            "client": window.client,
            "count": window.count,
            "reasons": dict(window.reasons),
            "minute": started.strftime("%Y-%m-%dT%H:%MZ"),
        },
        now=now,
    )
