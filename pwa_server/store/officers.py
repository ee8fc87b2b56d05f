"""Rows of officers, their WebAuthn keys and invitations.

Every change that a concurrent request could race is one conditional statement: an invitation
is used once, a key's counter only grows, the last key and the last active security officer
stay. PostgreSQL first locks the rows the condition counts (SQLite runs one writer at a time).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, delete, func, insert, or_, select, update

from pwa_server.store.inserts import inserted
from pwa_server.store.tables import (
    invitation_approvals,
    officer_credentials,
    officer_invitations,
    officers,
)
from pwa_server.vocabulary import AccountStatus


@dataclass(frozen=True)
class OfficerRow:
    """An officer as stored."""

    id: str
    display_name: str
    role: str
    status: AccountStatus
    created_at: dt.datetime
    last_sign_in_at: dt.datetime | None


@dataclass(frozen=True)
class CredentialRow:
    """A WebAuthn key as stored."""

    credential_id: bytes
    officer_id: str
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    label: str
    device_type: str
    backed_up: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    last_challenge_issued_at: dt.datetime | None


@dataclass(frozen=True)
class InvitationRow:
    """An invitation link as stored (its token only as a hash)."""

    id: int
    token_sha256: str
    officer_id: str
    role: str
    display_name: str
    created_by: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    approvals_required: int


def _credential(row: object) -> CredentialRow:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["credential_id"] = bytes(values["credential_id"])
    values["public_key"] = bytes(values["public_key"])
    values["transports"] = tuple(json.loads(values["transports"]))
    return CredentialRow(**values)


# Officers


def insert_officer(
    connection: Connection, *, officer_id: str, display_name: str, role: str, now: dt.datetime
) -> None:
    """Record a new active officer."""
    connection.execute(
        insert(officers).values(
            id=officer_id,
            display_name=display_name,
            role=role,
            status=AccountStatus.ACTIVE,
            created_at=now,
        )
    )


def officer_by_id(connection: Connection, officer_id: str) -> OfficerRow | None:
    row = connection.execute(select(officers).where(officers.c.id == officer_id)).one_or_none()
    return OfficerRow(**row._mapping) if row is not None else None


def all_officers(connection: Connection) -> list[OfficerRow]:
    rows = connection.execute(select(officers).order_by(officers.c.created_at, officers.c.id))
    return [OfficerRow(**row._mapping) for row in rows]


def any_officer(connection: Connection) -> bool:
    return connection.execute(select(officers.c.id).limit(1)).first() is not None


def record_sign_in(connection: Connection, officer_id: str, *, now: dt.datetime) -> bool:
    """Note a sign-in; False when the officer is not active (disabled meanwhile)."""
    result = connection.execute(
        update(officers)
        .where(officers.c.id == officer_id, officers.c.status == AccountStatus.ACTIVE)
        .values(last_sign_in_at=now)
    )
    return result.rowcount == 1


def disable_officer_unless_last(connection: Connection, officer_id: str, *, role: str) -> bool:
    """Disable an active officer of `role` unless no other active one of that role is left.

    False when the officer is not active or is the last one.
    """
    # PostgreSQL: two officers disabling each other at once must not both see one left over.
    connection.execute(
        select(officers.c.id)
        .where(officers.c.role == role, officers.c.status == AccountStatus.ACTIVE)
        .with_for_update()
    ).all()
    others = (
        select(func.count())
        .select_from(officers)
        .where(
            officers.c.role == role,
            officers.c.status == AccountStatus.ACTIVE,
            officers.c.id != officer_id,
        )
        .scalar_subquery()
    )
    result = connection.execute(
        update(officers)
        .where(officers.c.id == officer_id, officers.c.status == AccountStatus.ACTIVE, others > 0)
        .values(status=AccountStatus.DISABLED)
    )
    return result.rowcount == 1


def disable_officer(connection: Connection, officer_id: str) -> bool:
    """Disable an active officer; False when not active."""
    result = connection.execute(
        update(officers)
        .where(officers.c.id == officer_id, officers.c.status == AccountStatus.ACTIVE)
        .values(status=AccountStatus.DISABLED)
    )
    return result.rowcount == 1


# Keys


def insert_credential(
    connection: Connection,
    *,
    credential_id: bytes,
    officer_id: str,
    public_key: bytes,
    sign_count: int,
    transports: tuple[str, ...],
    aaguid: str,
    label: str,
    device_type: str,
    backed_up: bool,
    now: dt.datetime,
) -> bool:
    """Record a new key; False when that credential id is registered already (to anyone)."""
    return inserted(
        connection,
        insert(officer_credentials).values(
            credential_id=credential_id,
            officer_id=officer_id,
            public_key=public_key,
            sign_count=sign_count,
            transports=json.dumps(list(transports)),
            aaguid=aaguid,
            label=label,
            device_type=device_type,
            backed_up=backed_up,
            created_at=now,
        ),
    )


def credential_by_id(connection: Connection, credential_id: bytes) -> CredentialRow | None:
    row = connection.execute(
        select(officer_credentials).where(officer_credentials.c.credential_id == credential_id)
    ).one_or_none()
    return _credential(row) if row is not None else None


def credentials_of_officer(connection: Connection, officer_id: str) -> list[CredentialRow]:
    rows = connection.execute(
        select(officer_credentials)
        .where(officer_credentials.c.officer_id == officer_id)
        .order_by(officer_credentials.c.created_at, officer_credentials.c.credential_id)
    )
    return [_credential(row) for row in rows]


def record_credential_use(
    connection: Connection,
    credential: CredentialRow,
    *,
    sign_count: int,
    backed_up: bool,
    challenge_issued_at: dt.datetime,
    now: dt.datetime,
) -> bool:
    """Store a verified use of `credential`, only if nobody used it since it was read and the
    challenge is newer than the last one it answered; False otherwise.

    This is what keeps one assertion from being accepted twice, by two requests at once or
    one after the other, whatever the authenticator's counter does.
    """
    table = officer_credentials
    result = connection.execute(
        update(table)
        .where(
            table.c.credential_id == credential.credential_id,
            table.c.sign_count == credential.sign_count,
            or_(
                table.c.last_challenge_issued_at.is_(None),
                table.c.last_challenge_issued_at < challenge_issued_at,
            ),
        )
        .values(
            sign_count=sign_count,
            backed_up=backed_up,
            last_used_at=now,
            last_challenge_issued_at=challenge_issued_at,
        )
    )
    return result.rowcount == 1


def delete_credential_unless_last(
    connection: Connection, *, officer_id: str, credential_id: bytes
) -> bool:
    """Delete one of the officer's keys unless it is their last; False when not deleted."""
    # PostgreSQL: removing two keys at once must not leave none; the officer's row serialises.
    connection.execute(
        select(officers.c.id).where(officers.c.id == officer_id).with_for_update()
    ).all()
    table = officer_credentials
    others = (
        select(func.count())
        .select_from(table)
        .where(table.c.officer_id == officer_id, table.c.credential_id != credential_id)
        .scalar_subquery()
    )
    result = connection.execute(
        delete(table).where(
            table.c.officer_id == officer_id,
            table.c.credential_id == credential_id,
            others > 0,
        )
    )
    return result.rowcount == 1


# Invitations


def insert_invitation(
    connection: Connection,
    *,
    token_sha256: str,
    officer_id: str,
    role: str,
    display_name: str,
    created_by: str | None,
    now: dt.datetime,
    expires_at: dt.datetime,
    approvals_required: int = 1,
) -> None:
    """Record a new invitation link."""
    connection.execute(
        insert(officer_invitations).values(
            token_sha256=token_sha256,
            officer_id=officer_id,
            role=role,
            display_name=display_name,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
            approvals_required=approvals_required,
        )
    )


def invitation_by_id(connection: Connection, invitation_id: int) -> InvitationRow | None:
    row = connection.execute(
        select(officer_invitations).where(officer_invitations.c.id == invitation_id)
    ).one_or_none()
    return InvitationRow(**row._mapping) if row is not None else None


def insert_invitation_approval(
    connection: Connection, *, invitation_id: int, officer_id: str, now: dt.datetime
) -> bool:
    """Record an officer's approval of an invitation; False when they approved it already."""
    return inserted(
        connection,
        insert(invitation_approvals).values(
            invitation_id=invitation_id, officer_id=officer_id, approved_at=now
        ),
    )


def invitation_approvers(connection: Connection, invitation_id: int, *, role: str) -> list[str]:
    """The officers still active with `role` who approved the invitation, earliest first."""
    rows = connection.execute(
        select(invitation_approvals.c.officer_id)
        .join(officers, officers.c.id == invitation_approvals.c.officer_id)
        .where(
            invitation_approvals.c.invitation_id == invitation_id,
            officers.c.status == AccountStatus.ACTIVE,
            officers.c.role == role,
        )
        .order_by(invitation_approvals.c.approved_at, invitation_approvals.c.officer_id)
    )
    return [str(officer_id) for (officer_id,) in rows]


def open_invitations_needing_approval(
    connection: Connection, *, now: dt.datetime
) -> list[InvitationRow]:
    """Unused, unexpired invitations that need approvals besides their inviter's, oldest
    first."""
    table = officer_invitations
    rows = connection.execute(
        select(table)
        .where(table.c.used_at.is_(None), table.c.expires_at > now, table.c.approvals_required > 1)
        .order_by(table.c.created_at, table.c.id)
    )
    return [InvitationRow(**row._mapping) for row in rows]


def invitation_by_token_hash(connection: Connection, token_sha256: str) -> InvitationRow | None:
    row = connection.execute(
        select(officer_invitations).where(officer_invitations.c.token_sha256 == token_sha256)
    ).one_or_none()
    return InvitationRow(**row._mapping) if row is not None else None


def use_invitation(connection: Connection, invitation_id: int, *, now: dt.datetime) -> bool:
    """Mark the invitation used, once and only before it expires; False otherwise."""
    table = officer_invitations
    result = connection.execute(
        update(table)
        .where(table.c.id == invitation_id, table.c.used_at.is_(None), table.c.expires_at > now)
        .values(used_at=now)
    )
    return result.rowcount == 1


def expire_open_invitations(
    connection: Connection, *, created_by: str | None, now: dt.datetime
) -> None:
    """End the unused invitations of an officer (None: the bootstrap links) now."""
    table = officer_invitations
    sender: ColumnElement[bool]
    if created_by is None:
        sender = table.c.created_by.is_(None)
    else:
        sender = table.c.created_by == created_by
    connection.execute(
        update(table)
        .where(sender, table.c.used_at.is_(None), table.c.expires_at > now)
        .values(expires_at=now)
    )
