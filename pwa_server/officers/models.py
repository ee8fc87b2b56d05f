"""What the officer service hands out: officers, their keys, invitation links."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from pwa_server.names import InvalidNameError, checked_name
from pwa_server.officers.errors import InvalidOfficerInputError, KeyNotFoundError
from pwa_server.officers.roles import Permission, Role, can
from pwa_server.store.officers import CredentialRow, OfficerRow
from pwa_server.vocabulary import AccountStatus


@dataclass(frozen=True)
class Officer:
    """An officer of the console, with their one role."""

    id: str
    display_name: str
    role: Role
    status: AccountStatus
    created_at: dt.datetime
    last_sign_in_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: OfficerRow) -> Officer:
        return cls(
            id=row.id,
            display_name=row.display_name,
            role=Role(row.role),
            status=row.status,
            created_at=row.created_at,
            last_sign_in_at=row.last_sign_in_at,
        )

    @property
    def active(self) -> bool:
        return self.status == AccountStatus.ACTIVE

    def can(self, permission: Permission) -> bool:
        """True when the officer is active and their role grants `permission`."""
        return self.active and can(self.role, permission)


@dataclass(frozen=True)
class OfficerKey:
    """One of an officer's WebAuthn keys, as the console lists it (no key material)."""

    credential_id: bytes
    label: str
    transports: tuple[str, ...]
    aaguid: str
    device_type: str  # single_device | multi_device (a synced passkey)
    backed_up: bool
    sign_count: int
    created_at: dt.datetime
    last_used_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: CredentialRow) -> OfficerKey:
        return cls(
            credential_id=row.credential_id,
            label=row.label,
            transports=row.transports,
            aaguid=row.aaguid,
            device_type=row.device_type,
            backed_up=row.backed_up,
            sign_count=row.sign_count,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
        )

    @property
    def credential_id_text(self) -> str:
        """The credential id in base64url without padding, as in forms and URLs."""
        return encode_credential_id(self.credential_id)


@dataclass(frozen=True)
class StepUp:
    """A fresh assertion of the officer's key (WebAuthn JSON) and the challenge it answers,
    confirming one change (step-up)."""

    credential_json: str
    challenge: bytes


@dataclass(frozen=True)
class InvitationLink:
    """A one-time registration link, shown once: its token is stored only as a hash."""

    url: str
    token: str
    role: Role
    display_name: str
    expires_at: dt.datetime
    # Approvals of other security officers it needs before it registers anyone.
    awaiting_approvals: int = 0


@dataclass(frozen=True)
class Invitation:
    """What an open invitation offers, for the registration page."""

    role: Role
    display_name: str
    expires_at: dt.datetime
    awaiting_approvals: int = 0


@dataclass(frozen=True)
class PendingInvitation:
    """An invitation of a security officer waiting for other security officers' approval."""

    id: int
    role: Role
    display_name: str
    invited_by: str | None
    expires_at: dt.datetime
    awaiting_approvals: int


def encode_credential_id(credential_id: bytes) -> str:
    """base64url without padding, as WebAuthn's JSON writes credential ids."""
    return base64.urlsafe_b64encode(credential_id).rstrip(b"=").decode("ascii")


def decode_credential_id(text: str) -> bytes:
    """The credential id from its base64url text; KeyNotFoundError when it is not one."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KeyNotFoundError(text) from None


def validated_name(field: str, value: str) -> str:
    """`value` as a name (display name, key label); InvalidOfficerInputError naming `field`
    when it is not one."""
    try:
        return checked_name(value)
    except InvalidNameError as error:
        raise InvalidOfficerInputError(field, str(error)) from None
