"""Invitations: the bootstrap link of the first security officer, links that invite officers
(a security officer's under dual control: other security officers approve it first), and
registering the invited officer with their first key."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Connection, Engine

from pwa_server.audit import ActorKind, AuditAction, record
from pwa_server.officers import ceremonies
from pwa_server.officers.ceremonies import Ceremony, RelyingParty
from pwa_server.officers.dual_control import approvals_required, missing_approvals
from pwa_server.officers.errors import (
    BootstrapRefusedError,
    InvitationApprovalRefusedError,
    InvitationAwaitingApprovalError,
    InvitationExpiredError,
    InvitationNotFoundError,
    InvitationUsedError,
    OfficerNotFoundError,
)
from pwa_server.officers.keys import insert_key
from pwa_server.officers.models import (
    Invitation,
    InvitationLink,
    Officer,
    PendingInvitation,
    validated_name,
)
from pwa_server.officers.policy import INVITATION_VALIDITY
from pwa_server.officers.roles import Permission, Role
from pwa_server.officers.roster import Roster
from pwa_server.store import officers as store
from pwa_server.store.officers import InvitationRow

BOOTSTRAP_DISPLAY_NAME = "First security officer"


class Invitations:
    """Invitations to the officers on `roster`; links point to `public_url`.

    `security_officer_approvals` is the M of dual control over inviting a security officer.
    """

    def __init__(
        self,
        engine: Engine,
        party: RelyingParty,
        roster: Roster,
        *,
        public_url: str,
        security_officer_approvals: int,
    ) -> None:
        self.engine = engine
        self.party = party
        self.roster = roster
        self.public_url = public_url
        self.security_officer_approvals = security_officer_approvals

    def bootstrap(
        self, *, now: datetime, display_name: str = BOOTSTRAP_DISPLAY_NAME
    ) -> InvitationLink:
        """A link that registers the first security officer; refused once any officer exists.

        A newer bootstrap link replaces older unused ones, so that one is live at a time.
        """
        name = validated_name("display_name", display_name)
        with self.engine.begin() as connection:
            if store.any_officer(connection):
                raise BootstrapRefusedError(
                    "officers exist already: an officer invites new ones from the console"
                )
            store.expire_open_invitations(connection, created_by=None, now=now)
            return self._new_invitation(
                connection, role=Role.SECURITY_OFFICER, display_name=name, by=None, now=now
            )

    def invite(
        self, *, by_officer_id: str, role: Role, display_name: str, now: datetime
    ) -> InvitationLink:
        """A link that registers a new officer with `role`; only who may INVITE_OFFICERS.

        A security officer's link needs other security officers' approval first
        (dual_control.py); the invitation is audited with what it needs.
        """
        name = validated_name("display_name", display_name)
        self.roster.require(officer_id=by_officer_id, permission=Permission.INVITE_OFFICERS)
        with self.engine.begin() as connection:
            required = approvals_required(connection, role, self.security_officer_approvals)
            link = self._new_invitation(
                connection,
                role=role,
                display_name=name,
                by=by_officer_id,
                now=now,
                approvals=required,
            )
            record(
                connection,
                actor_kind=ActorKind.OFFICER,
                actor=by_officer_id,
                action=AuditAction.OFFICER_INVITED,
                details={"role": role.value, "approvals_required": required},
                now=now,
            )
        return link

    def approve(self, *, by_officer_id: str, invitation_id: int, now: datetime) -> None:
        """Another security officer's approval of an invitation of a security officer (the
        caller checked a fresh assertion of their key); audited with it."""
        self.roster.require(officer_id=by_officer_id, permission=Permission.INVITE_OFFICERS)
        with self.engine.begin() as connection:
            row = store.invitation_by_id(connection, invitation_id)
            if row is None:
                raise InvitationNotFoundError()
            _usable(row, now)
            if row.created_by == by_officer_id:
                raise InvitationApprovalRefusedError(
                    "the inviter's approval counts already: another security officer approves"
                )
            if missing_approvals(connection, row) == 0:
                raise InvitationApprovalRefusedError("this invitation needs no more approvals")
            if not store.insert_invitation_approval(
                connection, invitation_id=row.id, officer_id=by_officer_id, now=now
            ):
                raise InvitationApprovalRefusedError("you approved this invitation already")
            record(
                connection,
                actor_kind=ActorKind.OFFICER,
                actor=by_officer_id,
                action=AuditAction.APPROVAL_GRANTED,
                subject_kind="invitation",
                subject=str(row.id),
                details={"role": row.role, "invited_by": row.created_by},
                now=now,
            )

    def pending(self, *, now: datetime) -> list[PendingInvitation]:
        """Open invitations of security officers still waiting for approvals, oldest first."""
        with self.engine.connect() as connection:
            rows = store.open_invitations_needing_approval(connection, now=now)
            waiting = [(row, missing_approvals(connection, row)) for row in rows]
        return [
            PendingInvitation(
                row.id, Role(row.role), row.display_name, row.created_by, row.expires_at, missing
            )
            for row, missing in waiting
            if missing > 0
        ]

    def offer(self, *, token: str, now: datetime) -> Invitation:
        """What an open invitation offers (and the approvals it still waits for); raises
        when it is unknown, used or expired."""
        with self.engine.connect() as connection:
            row = _open_invitation(connection, token, now, approved=False)
            missing = missing_approvals(connection, row)
        return Invitation(Role(row.role), row.display_name, row.expires_at, missing)

    def registration_options(self, *, invitation_token: str, now: datetime) -> Ceremony:
        """Options to create the invited officer's first key."""
        with self.engine.connect() as connection:
            row = _open_invitation(connection, invitation_token, now)
        return ceremonies.registration_options(
            self.party,
            user_handle=row.officer_id.encode("ascii"),
            user_name=row.display_name,
            exclude=(),
            now=now,
        )

    def register(
        self,
        *,
        invitation_token: str,
        credential_json: str,
        expected_challenge: bytes,
        label: str,
        now: datetime,
    ) -> Officer:
        """Verify the new key (user verification required) and create the invited officer.

        The invitation is used by a conditional UPDATE in the same transaction, so that a
        link registers one officer even when it is submitted twice at once.
        """
        label = validated_name("label", label)
        with self.engine.connect() as connection:
            row = _open_invitation(connection, invitation_token, now)
        key = ceremonies.verify_registration(
            self.party,
            credential_json=credential_json,
            expected_challenge=expected_challenge,
            now=now,
        )
        with self.engine.begin() as connection:
            if not store.use_invitation(connection, row.id, now=now):
                _open_invitation(connection, invitation_token, now)  # raises used or expired
                raise InvitationUsedError()
            if row.created_by is None and store.any_officer(connection):
                raise BootstrapRefusedError("officers exist already")
            store.insert_officer(
                connection,
                officer_id=row.officer_id,
                display_name=row.display_name,
                role=row.role,
                now=now,
            )
            insert_key(connection, row.officer_id, key, label, now)
            officer = store.officer_by_id(connection, row.officer_id)
        if officer is None:
            raise OfficerNotFoundError(f"no officer {row.officer_id}")
        return Officer.from_row(officer)

    def _new_invitation(
        self,
        connection: Connection,
        *,
        role: Role,
        display_name: str,
        by: str | None,
        now: datetime,
        approvals: int = 1,
    ) -> InvitationLink:
        token = secrets.token_urlsafe(32)
        expires_at = now + INVITATION_VALIDITY
        store.insert_invitation(
            connection,
            token_sha256=_token_hash(token),
            officer_id=secrets.token_urlsafe(16),
            role=role.value,
            display_name=display_name,
            created_by=by,
            now=now,
            expires_at=expires_at,
            approvals_required=approvals,
        )
        return InvitationLink(
            url=f"{self.public_url}/officer/register/{token}",
            token=token,
            role=role,
            display_name=display_name,
            expires_at=expires_at,
            awaiting_approvals=approvals - 1,
        )


def _open_invitation(
    connection: Connection, token: str, now: datetime, *, approved: bool = True
) -> InvitationRow:
    """The invitation of that token, if it can register an officer (`approved`: and has the
    approvals it needs)."""
    row = store.invitation_by_token_hash(connection, _token_hash(token))
    if row is None:
        raise InvitationNotFoundError()
    _usable(row, now)
    if approved and (missing := missing_approvals(connection, row)):
        raise InvitationAwaitingApprovalError(missing)
    return row


def _usable(row: InvitationRow, now: datetime) -> None:
    if row.used_at is not None:
        raise InvitationUsedError()
    if now >= row.expires_at:
        raise InvitationExpiredError()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
