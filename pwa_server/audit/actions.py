"""The audit log's vocabulary: who acts, what they did, how it ended."""

from __future__ import annotations

import enum


class ActorKind(enum.StrEnum):
    """Who caused an event."""

    OFFICER = "officer"  # actor: the officer's user name
    SITE = "site"  # actor: the site's name (an API call)
    USER = "user"  # actor: the enrollment id or certificate user ID
    SYSTEM = "system"  # actor: the command or process ("shomei init", "server")


class Outcome(enum.StrEnum):
    """Whether the attempt the event records succeeded."""

    SUCCESS = "success"
    FAILURE = "failure"


class AuditAction(enum.StrEnum):
    """Every security event the log records, as `<subject>.<what happened>`."""

    # Officers
    OFFICER_SIGNED_IN = "officer.signed_in"
    OFFICER_SIGN_IN_FAILED = "officer.sign_in_failed"
    OFFICER_SIGNED_OUT = "officer.signed_out"
    OFFICER_SESSIONS_ENDED = "officer.sessions_ended"  # "sign out everywhere else"
    OFFICER_INVITED = "officer.invited"
    OFFICER_REGISTERED = "officer.registered"
    OFFICER_CREDENTIAL_ADDED = "officer.credential_added"
    OFFICER_CREDENTIAL_REMOVED = "officer.credential_removed"
    OFFICER_ROLE_CHANGED = "officer.role_changed"
    OFFICER_DISABLED = "officer.disabled"
    # Enrollments: invitations, the user's secrets, lockouts and downloads. (S105: these
    # name events about passwords; they are not passwords.)
    ENROLLMENT_INVITED = "enrollment.invited"
    ENROLLMENT_ONE_TIME_PASSWORD_VERIFIED = "enrollment.one_time_password_verified"  # noqa: S105
    ENROLLMENT_ONE_TIME_PASSWORD_FAILED = "enrollment.one_time_password_failed"  # noqa: S105
    ENROLLMENT_ONE_TIME_PASSWORD_REISSUED = "enrollment.one_time_password_reissued"  # noqa: S105
    ENROLLMENT_SECRET_REGISTERED = "enrollment.secret_registered"  # noqa: S105
    ENROLLMENT_SECRET_ANSWER_FAILED = "enrollment.secret_answer_failed"  # noqa: S105
    ENROLLMENT_DOWNLOAD_PASSWORD_FAILED = "enrollment.download_password_failed"  # noqa: S105
    ENROLLMENT_DOWNLOADED = "enrollment.downloaded"
    ENROLLMENT_INSTALLED = "enrollment.installed"
    ENROLLMENT_LOCKED = "enrollment.locked"
    ENROLLMENT_UNLOCKED = "enrollment.unlocked"
    ENROLLMENT_REISSUED = "enrollment.reissued"
    ENROLLMENT_CANCELLED = "enrollment.cancelled"
    ENROLLMENT_MAIL_RESENT = "enrollment.mail_resent"
    # Certificates
    CERTIFICATE_ISSUED = "certificate.issued"
    CERTIFICATE_REVOKED = "certificate.revoked"
    # Dual control
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_GRANTED = "approval.granted"
    APPROVAL_REJECTED = "approval.rejected"
    # Token keys (CAs, responders, signers, the audit seal key)
    KEY_GENERATED = "key.generated"
    KEY_RETIRED = "key.retired"
    # Configuration
    CONFIGURATION_CHANGED = "configuration.changed"
    # Relying sites and their API keys
    SITE_CREATED = "site.created"
    SITE_UPDATED = "site.updated"
    SITE_DISABLED = "site.disabled"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    API_KEY_REJECTED = "api_key.rejected"
