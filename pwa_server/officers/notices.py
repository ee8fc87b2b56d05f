"""Changes to an officer's own account (keys, sessions): recorded in the audit log in the
transaction that makes them, and read back as the notices the console shows the officer.
Officers have no mail address, so this notice on the overview, seen at every sign-in, is how
they learn of a key they did not add."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from pwa_server.audit import ActorKind, AuditAction, JsonValue, events, record

# Long enough to span a holiday between two sign-ins.
NOTICE_PERIOD = dt.timedelta(days=30)
# Each kind of change, newest first: enough to see a pattern, short enough to read.
_PER_ACTION = 5
NOTICED = (
    AuditAction.OFFICER_CREDENTIAL_ADDED,
    AuditAction.OFFICER_CREDENTIAL_REMOVED,
    AuditAction.OFFICER_SESSIONS_ENDED,
)


@dataclass(frozen=True)
class AccountNotice:
    """One change to the officer's account: what, when, from which address, which key."""

    action: AuditAction
    occurred_at: dt.datetime
    client: str
    label: str


def record_account_event(
    connection: Connection,
    officer_id: str,
    action: AuditAction,
    details: dict[str, JsonValue],
    now: dt.datetime,
) -> None:
    """Append the officer's own change to their account, in the caller's transaction."""
    record(
        connection,
        actor_kind=ActorKind.OFFICER,
        actor=officer_id,
        action=action,
        subject_kind="officer",
        subject=officer_id,
        details=details,
        now=now,
    )


def account_notices(engine: Engine, officer_id: str, *, now: dt.datetime) -> list[AccountNotice]:
    """The changes to `officer_id`'s keys and sessions within NOTICE_PERIOD, newest first."""
    found = []
    for action in NOTICED:
        for event in events(engine, limit=_PER_ACTION, action=action, subject=officer_id):
            if now - event.occurred_at > NOTICE_PERIOD:
                break
            details = json.loads(event.details or "{}")
            found.append(
                AccountNotice(
                    action=action,
                    occurred_at=event.occurred_at,
                    client=str(details.get("client", "")),
                    label=str(details.get("label", "")),
                )
            )
    return sorted(found, key=lambda notice: notice.occurred_at, reverse=True)
