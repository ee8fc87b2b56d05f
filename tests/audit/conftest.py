"""An empty migrated database of each kind for the audit log, and helpers to fill and break it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

from pwa_server.audit import ActorKind, AuditAction, Outcome, record

START = dt.datetime(2026, 4, 1, 9, 0, 0, 123456, tzinfo=dt.UTC)


def append(engine: Engine, count: int, *, start: int = 0) -> list[int]:
    """Record `count` events, one transaction each, as the application would; their ids."""
    ids = []
    for number in range(start, start + count):
        with engine.begin() as connection:
            ids.append(
                record(
                    connection,
                    actor_kind=ActorKind.USER,
                    actor=f"enrollment-{number}",
                    action=AuditAction.ENROLLMENT_ONE_TIME_PASSWORD_FAILED,
                    subject_kind="enrollment",
                    subject=f"enrollment-{number}",
                    outcome=Outcome.FAILURE,
                    details={"attempt": number, "remaining": 5},
                    now=START + dt.timedelta(seconds=number),
                )
            )
    return ids


def execute(engine: Engine, statement: str, **parameters: object) -> None:
    """Run raw SQL, as someone with write access to the database would."""
    with engine.begin() as connection:
        connection.execute(text(statement), parameters)
