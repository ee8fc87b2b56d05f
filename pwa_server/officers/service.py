"""Officers over the database: bootstrap and invitations, keys, sign-in and step-up.

Every method takes the time as `now`. WebAuthn challenges are not stored here: the web layer
keeps each one in the signed session and hands it back as `expected_challenge`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine

from pwa_server.audit import ActorKind, AuditAction, JsonValue, record
from pwa_server.names import InvalidNameError, checked_name
from pwa_server.officers import assertions, ceremonies
from pwa_server.officers.ceremonies import Ceremony, KnownKey, RelyingParty, origin_of
from pwa_server.officers.dual_control import approvals_required, missing_approvals
from pwa_server.officers.errors import (
    BootstrapRefusedError,
    InvalidOfficerInputError,
    InvitationApprovalRefusedError,
    InvitationAwaitingApprovalError,
    InvitationExpiredError,
    InvitationNotFoundError,
    InvitationUsedError,
    KeyNotFoundError,
    LastKeyError,
    LastSecurityOfficerError,
    OfficerDisabledError,
    OfficerNotFoundError,
    PermissionDeniedError,
    RegistrationRefusedError,
)
from pwa_server.officers.models import (
    Invitation,
    InvitationLink,
    Officer,
    OfficerKey,
    PendingInvitation,
    StepUp,
    encode_credential_id,
)
from pwa_server.officers.notices import record_account_event
from pwa_server.officers.policy import INVITATION_VALIDITY
from pwa_server.officers.refusals import SignInRefusals
from pwa_server.officers.roles import Permission, Role
from pwa_server.officers.sessions import OfficerSessions, end_sessions_of_disabled
from pwa_server.settings import Settings
from pwa_server.store import officers as store
from pwa_server.store.officers import ACTIVE, CredentialRow, InvitationRow

BOOTSTRAP_DISPLAY_NAME = "First security officer"


class OfficerService:
    """Officers, their keys and invitations; WebAuthn for relying party `rp_id` at `origin`.

    `public_url` is where invitation links point (default: `origin`).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        rp_id: str,
        rp_name: str,
        origin: str,
        public_url: str | None = None,
        security_officer_approvals: int = 2,
    ) -> None:
        self.engine = engine
        # M of the key ceremonies: who may approve them is under the same dual control.
        self.security_officer_approvals = security_officer_approvals
        self.party = RelyingParty(rp_id=rp_id, rp_name=rp_name, origin=origin)
        self.public_url = (public_url or origin).rstrip("/")
        self.sessions = OfficerSessions(engine)
        self.refusals = SignInRefusals(engine)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> OfficerService:
        """The service for this instance: the RP id is the public URL's host name."""
        public_url = settings.effective_public_url
        return cls(
            engine,
            rp_id=urlsplit(public_url).hostname or "localhost",
            rp_name=settings.ca_organization,
            origin=origin_of(public_url),
            public_url=public_url,
            security_officer_approvals=settings.ceremony_approvals,
        )

    # Invitations

    def bootstrap(
        self, *, now: datetime, display_name: str = BOOTSTRAP_DISPLAY_NAME
    ) -> InvitationLink:
        """A link that registers the first security officer; refused once any officer exists.

        A newer bootstrap link replaces older unused ones, so that one is live at a time.
        """
        name = _validated_name("display_name", display_name)
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
        name = _validated_name("display_name", display_name)
        self.require(officer_id=by_officer_id, permission=Permission.INVITE_OFFICERS)
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

    def approve_invitation(self, *, by_officer_id: str, invitation_id: int, now: datetime) -> None:
        """Another security officer's approval of an invitation of a security officer (the
        caller checked a fresh assertion of their key); audited with it."""
        self.require(officer_id=by_officer_id, permission=Permission.INVITE_OFFICERS)
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

    def pending_invitations(self, *, now: datetime) -> list[PendingInvitation]:
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

    def invitation(self, *, token: str, now: datetime) -> Invitation:
        """What an open invitation offers (and the approvals it still waits for); raises
        when it is unknown, used or expired."""
        with self.engine.connect() as connection:
            row = _open_invitation(connection, token, now, approved=False)
            missing = missing_approvals(connection, row)
        return Invitation(Role(row.role), row.display_name, row.expires_at, missing)

    # Registration

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
        label = _validated_name("label", label)
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
            _insert_key(connection, row.officer_id, key, label, now)
            officer = store.officer_by_id(connection, row.officer_id)
        if officer is None:
            raise OfficerNotFoundError(f"no officer {row.officer_id}")
        return Officer.from_row(officer)

    def add_key_options(self, *, officer_id: str, now: datetime) -> Ceremony:
        """Options to add a key; the officer's registered keys are excluded."""
        officer = self._active(officer_id)
        return ceremonies.registration_options(
            self.party,
            user_handle=officer.id.encode("ascii"),
            user_name=officer.display_name,
            exclude=[KnownKey(key.credential_id, key.transports) for key in self.keys(officer_id)],
            now=now,
        )

    def add_key(
        self,
        *,
        officer_id: str,
        credential_json: str,
        expected_challenge: bytes,
        label: str,
        confirmation: StepUp,
        now: datetime,
        client: str | None = None,
    ) -> OfficerKey:
        """Verify and store another key of the officer, audited with it.

        `confirmation` must be a fresh assertion by a key the officer registered before:
        whoever holds a copy of the console session alone must not add a key of their own.
        """
        label = _validated_name("label", label)
        self.step_up(
            officer_id=officer_id,
            credential_json=confirmation.credential_json,
            expected_challenge=confirmation.challenge,
            now=now,
        )
        key = ceremonies.verify_registration(
            self.party,
            credential_json=credential_json,
            expected_challenge=expected_challenge,
            now=now,
        )
        with self.engine.begin() as connection:
            _insert_key(connection, officer_id, key, label, now)
            stored = store.credential_by_id(connection, key.credential_id)
            if stored is None:
                raise KeyNotFoundError("the new key was not stored")
            _audit_key(connection, AuditAction.OFFICER_CREDENTIAL_ADDED, stored, client, now)
        return OfficerKey.from_row(stored)

    def remove_key(
        self, *, officer_id: str, credential_id: bytes, now: datetime, client: str | None = None
    ) -> None:
        """Remove one of the officer's keys, audited with it; the last one stays
        (LastKeyError). The caller checked a fresh assertion (step-up) of the officer."""
        self._active(officer_id)
        with self.engine.begin() as connection:
            stored = store.credential_by_id(connection, credential_id)
            if stored is None or stored.officer_id != officer_id:
                raise KeyNotFoundError(f"officer {officer_id} has no such key")
            if not store.delete_credential_unless_last(
                connection, officer_id=officer_id, credential_id=credential_id
            ):
                raise LastKeyError("an officer keeps at least one key: add another one first")
            _audit_key(connection, AuditAction.OFFICER_CREDENTIAL_REMOVED, stored, client, now)

    # Sign-in and step-up

    def authentication_options(self, *, now: datetime) -> Ceremony:
        """Options to sign in with any discoverable key of this RP (no name typed)."""
        return ceremonies.authentication_options(self.party, allow=(), now=now)

    def step_up_options(self, *, officer_id: str, now: datetime) -> Ceremony:
        """Options for a fresh assertion by the signed-in officer: only their keys are allowed."""
        self._active(officer_id)
        allowed = [KnownKey(key.credential_id, key.transports) for key in self.keys(officer_id)]
        return ceremonies.authentication_options(self.party, allow=allowed, now=now)

    def authenticate(
        self, *, credential_json: str, expected_challenge: bytes, now: datetime
    ) -> Officer:
        """Sign in: the officer whose registered key made this assertion."""
        row = assertions.verify_assertion(
            self.engine,
            self.party,
            credential_json=credential_json,
            expected_challenge=expected_challenge,
            officer_id=None,
            now=now,
        )
        return Officer.from_row(row)

    def step_up(
        self, *, officer_id: str, credential_json: str, expected_challenge: bytes, now: datetime
    ) -> Officer:
        """A fresh assertion before a sensitive action: as `authenticate`, the key must be one
        of `officer_id`'s and the challenge at most STEP_UP_MAX_AGE old."""
        row = assertions.verify_step_up(
            self.engine,
            self.party,
            officer_id=officer_id,
            credential_json=credential_json,
            expected_challenge=expected_challenge,
            now=now,
        )
        return Officer.from_row(row)

    # Officers

    def has_officers(self) -> bool:
        """True once the first officer registered."""
        with self.engine.connect() as connection:
            return store.any_officer(connection)

    def officer(self, officer_id: str) -> Officer:
        """The officer with that id."""
        with self.engine.connect() as connection:
            row = store.officer_by_id(connection, officer_id)
        if row is None:
            raise OfficerNotFoundError(f"no officer {officer_id}")
        return Officer.from_row(row)

    def officers(self) -> list[Officer]:
        """Every officer, the earliest registered first."""
        with self.engine.connect() as connection:
            return [Officer.from_row(row) for row in store.all_officers(connection)]

    def keys(self, officer_id: str) -> list[OfficerKey]:
        """The officer's keys, the earliest registered first."""
        with self.engine.connect() as connection:
            rows = store.credentials_of_officer(connection, officer_id)
        return [OfficerKey.from_row(row) for row in rows]

    def require(self, *, officer_id: str, permission: Permission) -> Officer:
        """The officer, if active and allowed `permission`: for every page and action."""
        officer = self._active(officer_id)
        if not officer.can(permission):
            raise PermissionDeniedError(officer.role.value, permission.value)
        return officer

    def disable(self, *, by_officer_id: str, officer_id: str, now: datetime) -> Officer:
        """Disable an officer (not the last active security officer); their open invitations
        and console sessions end with it. Only who may MANAGE_OFFICERS."""
        self.require(officer_id=by_officer_id, permission=Permission.MANAGE_OFFICERS)
        target = self.officer(officer_id)
        with self.engine.begin() as connection:
            if target.role is Role.SECURITY_OFFICER:
                disabled = store.disable_officer_unless_last(
                    connection, officer_id, role=Role.SECURITY_OFFICER.value
                )
            else:
                disabled = store.disable_officer(connection, officer_id)
            if not disabled:
                latest = store.officer_by_id(connection, officer_id)
                if latest is None or latest.status != ACTIVE:
                    raise OfficerDisabledError(f"officer {officer_id} is disabled already")
                raise LastSecurityOfficerError(
                    "the last active security officer cannot be disabled"
                )
            store.expire_open_invitations(connection, created_by=officer_id, now=now)
            end_sessions_of_disabled(connection, officer_id, now)
        return self.officer(officer_id)

    def _active(self, officer_id: str) -> Officer:
        officer = self.officer(officer_id)
        if not officer.active:
            raise OfficerDisabledError(f"officer {officer_id} is disabled")
        return officer


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


def _insert_key(
    connection: Connection, officer_id: str, key: ceremonies.NewKey, label: str, now: datetime
) -> None:
    if not store.insert_credential(
        connection,
        credential_id=key.credential_id,
        officer_id=officer_id,
        public_key=key.public_key,
        sign_count=key.sign_count,
        transports=key.transports,
        aaguid=key.aaguid,
        label=label,
        device_type=key.device_type,
        backed_up=key.backed_up,
        now=now,
    ):
        raise RegistrationRefusedError("this key is registered already")


def _audit_key(
    connection: Connection,
    action: AuditAction,
    key: CredentialRow,
    client: str | None,
    now: datetime,
) -> None:
    details: dict[str, JsonValue] = {
        "label": key.label,
        "key": encode_credential_id(key.credential_id),
    }
    if client is not None:
        details["client"] = client
    record_account_event(connection, key.officer_id, action, details, now)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _validated_name(field: str, value: str) -> str:
    try:
        return checked_name(value)
    except InvalidNameError as error:
        raise InvalidOfficerInputError(field, str(error)) from None
