"""An enrollment's security events in the audit log, recorded in the caller's transaction.

Each event is appended in the transaction of the change it records, after that change (the
audit head is locked last, see `pwa_server.audit.record`), so that it exists exactly when the
change committed. Details hold facts, never a one-time password, answer or download password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import Connection

from pwa_server.audit import Actor, AuditAction, JsonValue, Outcome, record


def record_enrollment_event(
    connection: Connection,
    action: AuditAction,
    enrollment_id: str,
    *,
    now: dt.datetime,
    actor: Actor | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: Mapping[str, JsonValue] | None = None,
) -> None:
    """Record `action` about the enrollment; without `actor`, the user behind its URL did it."""
    who = actor if actor is not None else Actor.user(enrollment_id)
    record(
        connection,
        actor_kind=who.kind,
        actor=who.name,
        action=action,
        subject_kind="enrollment",
        subject=enrollment_id,
        outcome=outcome,
        details=details,
        now=now,
    )
