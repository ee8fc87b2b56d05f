"""What every step of a key ceremony reads and writes besides its change: the ceremony with its
approvals, the checks that refuse a step (role, open, approved enough), and its audit event."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from pwa_server.audit import ActorKind, AuditAction, JsonValue, Outcome, record
from pwa_server.officers.errors import (
    ApprovalsMissingError,
    CeremonyClosedError,
    CeremonyExpiredError,
    CeremonyNotFoundError,
    KeyCeremonyError,
    OfficerDisabledError,
    OfficerNotFoundError,
    PermissionDeniedError,
)
from pwa_server.officers.key_ceremony_models import (
    KeyCeremony,
    key_ceremony_from_rows,
)
from pwa_server.officers.models import Officer
from pwa_server.officers.roles import Permission
from pwa_server.store import ceremonies as store
from pwa_server.store.officers import officer_by_id
from pwa_server.vocabulary import CeremonyStatus

_SUBJECT_KIND = "key_ceremony"
# Room for a readable error in the ceremony's result and the audit event, not a whole traceback.
MAX_ERROR = 1000


def require_officer(connection: Connection, officer_id: str, *permissions: Permission) -> Officer:
    """The officer, if active and allowed every one of `permissions`."""
    row = officer_by_id(connection, officer_id)
    if row is None:
        raise OfficerNotFoundError(f"no officer {officer_id}")
    officer = Officer.from_row(row)
    if not officer.active:
        raise OfficerDisabledError(f"officer {officer_id} is disabled")
    for permission in permissions:
        if not officer.can(permission):
            raise PermissionDeniedError(officer.role.value, permission.value)
    return officer


def load_ceremony(connection: Connection, ceremony_id: int, now: dt.datetime) -> KeyCeremony:
    """The ceremony with its approvals; CeremonyNotFoundError when there is none."""
    row = store.ceremony_by_id(connection, ceremony_id)
    if row is None:
        raise CeremonyNotFoundError(f"no key ceremony {ceremony_id}")
    return key_ceremony_from_rows(row, store.approvals_of(connection, [row.id]), now)


def open_ceremony(connection: Connection, ceremony_id: int, now: dt.datetime) -> KeyCeremony:
    """The ceremony, if it is still open; its closed error otherwise."""
    ceremony = load_ceremony(connection, ceremony_id, now)
    if ceremony.status is not CeremonyStatus.OPEN:
        raise _closed_error(ceremony)
    return ceremony


def closed(connection: Connection, ceremony_id: int, now: dt.datetime) -> KeyCeremonyError:
    """The error for a ceremony found closed by a conditional UPDATE."""
    return _closed_error(load_ceremony(connection, ceremony_id, now))


def check_approved(ceremony: KeyCeremony) -> None:
    """ApprovalsMissingError unless enough security officers approved the ceremony."""
    if ceremony.missing_approvals > 0:
        raise ApprovalsMissingError(
            ceremony.id, ceremony.required_approvals, len(ceremony.approved_by)
        )


def audit(
    connection: Connection,
    officer_id: str,
    action: AuditAction,
    ceremony_id: int,
    now: dt.datetime,
    details: dict[str, JsonValue],
    *,
    outcome: Outcome = Outcome.SUCCESS,
    subject: tuple[str, str] | None = None,
) -> None:
    """The audit event of a step by `officer_id`; its subject is the ceremony unless given."""
    subject_kind, subject_name = subject or (_SUBJECT_KIND, str(ceremony_id))
    record(
        connection,
        actor_kind=ActorKind.OFFICER,
        actor=officer_id,
        action=action,
        subject_kind=subject_kind,
        subject=subject_name,
        outcome=outcome,
        details=details,
        now=now,
    )


def _closed_error(ceremony: KeyCeremony) -> CeremonyClosedError:
    if ceremony.status is CeremonyStatus.EXPIRED:
        return CeremonyExpiredError(ceremony.id)
    return CeremonyClosedError(ceremony.id, ceremony.status)
