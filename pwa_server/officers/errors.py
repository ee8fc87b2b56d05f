"""What can go wrong for an officer, as our own exception types (mapped to pages in web/)."""

from __future__ import annotations

from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.vocabulary import CeremonyStatus


class OfficerError(ShomeiError):
    """Root of the officer errors."""


class InvalidOfficerInputError(OfficerError):
    """A field that cannot be accepted (an empty display name, an unknown role, a long label)."""

    kind = ErrorKind.INVALID

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class BootstrapRefusedError(OfficerError):
    """Officers exist already: the first one is registered only once; officers invite others."""

    kind = ErrorKind.CONFLICT


class InvitationError(OfficerError):
    """An invitation link that cannot be used (root of the three below)."""


class InvitationNotFoundError(InvitationError):
    """No invitation has that token (mistyped, or never issued)."""

    kind = ErrorKind.NOT_FOUND

    def __init__(self) -> None:
        super().__init__("no invitation has this link")


class InvitationExpiredError(InvitationError):
    """The link's hour is over, a newer bootstrap link replaced it, or its sender was disabled."""

    kind = ErrorKind.GONE

    def __init__(self) -> None:
        super().__init__("this invitation link has expired: ask for a new one")


class InvitationUsedError(InvitationError):
    """The link registered an officer already: each works once."""

    kind = ErrorKind.GONE

    def __init__(self) -> None:
        super().__init__("this invitation link was used already")


class InvitationAwaitingApprovalError(InvitationError):
    """An invitation of a security officer that other security officers have not approved
    enough yet: it registers nobody until they do (dual control over who may approve)."""

    kind = ErrorKind.CONFLICT

    def __init__(self, missing: int) -> None:
        super().__init__(
            f"this invitation needs {missing} more approval(s) by other security officers"
        )
        self.missing = missing


class InvitationApprovalRefusedError(OfficerError):
    """The inviter approving their own invitation, an approval given twice, or an invitation
    that needs none (any more)."""

    kind = ErrorKind.CONFLICT


class OfficerNotFoundError(OfficerError):
    """No officer has that id."""

    kind = ErrorKind.NOT_FOUND


class OfficerDisabledError(OfficerError):
    """The officer was disabled: no sign-in, no action."""

    kind = ErrorKind.REFUSED


class PermissionDeniedError(OfficerError):
    """The officer's role does not grant the permission the action needs."""

    kind = ErrorKind.REFUSED

    def __init__(self, role: str, permission: str) -> None:
        super().__init__(f"a {role} may not {permission}")
        self.role = role
        self.permission = permission


class LastSecurityOfficerError(OfficerError):
    """Disabling this officer would leave no active security officer to run the CA."""

    kind = ErrorKind.CONFLICT


class KeyNotFoundError(OfficerError):
    """The officer has no key with that credential id."""

    kind = ErrorKind.NOT_FOUND


class LastKeyError(OfficerError):
    """An officer keeps at least one key: without one they could never sign in again."""

    kind = ErrorKind.CONFLICT


class CeremonyRefusedError(OfficerError):
    """A WebAuthn ceremony failed; `reason` names the check, for logs and the audit trail."""

    kind = ErrorKind.REFUSED

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChallengeExpiredError(CeremonyRefusedError):
    """The ceremony's challenge was issued too long ago (or is malformed): start again."""

    def __init__(self) -> None:
        super().__init__("the challenge expired; start again")


class RegistrationRefusedError(CeremonyRefusedError):
    """A new key's registration response failed verification, or the key is registered already.

    `reason` is py_webauthn's precise message where it gave one.
    """


class AssertionRefusedError(CeremonyRefusedError):
    """A sign-in or step-up assertion failed verification."""


class UnknownCredentialError(AssertionRefusedError):
    """The assertion was made with a key that is not registered (or was removed)."""

    def __init__(self) -> None:
        super().__init__("this key is not registered")


class SignCountError(AssertionRefusedError):
    """The key's signature counter did not increase: a cloned key, or a replayed assertion.

    Raised only for an assertion that is valid apart from its counter, so that it can be
    reported as a possible clone; the stored counter is left as it was.
    """

    def __init__(self, stored: int, received: int) -> None:
        super().__init__(f"sign counter {received} is not above the stored {stored}")
        self.stored = stored
        self.received = received


class AssertionReplayedError(AssertionRefusedError):
    """The assertion (or its challenge) was used already, or the key was used meanwhile."""

    def __init__(self) -> None:
        super().__init__("this assertion was used already; start again")


class WrongOfficerError(AssertionRefusedError):
    """A step-up assertion made with a key of another officer than the one signed in."""

    def __init__(self) -> None:
        super().__init__("the key belongs to another officer")


class KeyCeremonyError(OfficerError):
    """Root of the key ceremony errors."""


class CeremonyNotFoundError(KeyCeremonyError):
    """No key ceremony has that id."""

    kind = ErrorKind.NOT_FOUND


class CeremonyClosedError(KeyCeremonyError):
    """The ceremony is no longer open: executed, rejected, failed or expired."""

    kind = ErrorKind.CONFLICT

    def __init__(self, ceremony_id: int, status: CeremonyStatus) -> None:
        super().__init__(f"key ceremony {ceremony_id} is {status.value}")
        self.ceremony_id = ceremony_id
        self.status = status


class CeremonyExpiredError(CeremonyClosedError):
    """The proposal's time ran out before it was executed: propose it again."""

    def __init__(self, ceremony_id: int) -> None:
        super().__init__(ceremony_id, CeremonyStatus.EXPIRED)


class AlreadyApprovedError(KeyCeremonyError):
    """The officer approved this ceremony already (or proposed it): the second approval must
    come from another officer."""

    kind = ErrorKind.CONFLICT

    def __init__(self, ceremony_id: int) -> None:
        super().__init__(
            f"you approved key ceremony {ceremony_id} already: another security officer must"
        )


class ApprovalsMissingError(KeyCeremonyError):
    """Fewer distinct security officers approved than the ceremony requires."""

    kind = ErrorKind.CONFLICT

    def __init__(self, ceremony_id: int, required: int, given: int) -> None:
        missing = required - given
        more = "approval is" if missing == 1 else "approvals are"
        super().__init__(
            f"key ceremony {ceremony_id} needs approvals from {required} distinct security"
            f" officers and has {given}: {missing} more {more} missing"
        )
        self.required = required
        self.given = given
        self.missing = missing


class InvalidCeremonyError(KeyCeremonyError):
    """The proposal cannot be made: an unknown kind, or a target that cannot be changed."""

    kind = ErrorKind.INVALID


class CeremonyFailedError(KeyCeremonyError):
    """Executing the ceremony failed; it is marked failed with the error, and nothing of a
    half-made CA remains."""

    kind = ErrorKind.FAILED

    def __init__(self, ceremony_id: int, error: str) -> None:
        super().__init__(f"key ceremony {ceremony_id} failed: {error}")
        self.ceremony_id = ceremony_id
        self.error = error
