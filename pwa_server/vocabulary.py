"""The domain's words that are stored, sent and shown as strings, each set declared once.

The store, the domain, the API schemas, the console and the CLI all take their values from
here, so that none of them knows a value the others do not. The values are what the database
holds and the API sends: renaming one needs a data migration and a new API version.

Three things are called "profile" and are kept apart by name:
- a key profile (`KeyProfile`): the end-user key an enrollment's certificate is issued for;
- a certificate profile (`pwa_server.pki.profiles.CertificateProfile`): which extensions a
  certificate carries (root CA, client, OCSP responder, ...);
- an Apple configuration profile (`pwa_server.pki.packaging.mobileconfig`): the signed
  `.mobileconfig` file that installs the identity on iOS.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

# The docstrings of the words the API sends or takes are the descriptions of their schemas in
# the OpenAPI document: they are written for the sites that read it.

Word = TypeVar("Word", bound=StrEnum)


def word_of(words: type[Word], value: object) -> Word | None:
    """`value` (text from a form, a query or a caller) as one of `words`; None when it is
    none of them."""
    return next((word for word in words if word == value), None)


class KeyProfile(StrEnum):
    """The end-user key a certificate is issued for: EC P-256 (default) or RSA."""

    DEFAULT = "default"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"


class EnrollmentStatus(StrEnum):
    """Where an enrollment stands: invited, then the one-time password verified, the secret
    answer registered, the certificate downloaded and installed; or locked or cancelled."""

    INVITED = "invited"
    OTP_VERIFIED = "otp_verified"
    SECRET_REGISTERED = "secret_registered"  # noqa: S105 (a step, not a password)
    DOWNLOADED = "downloaded"
    INSTALLED = "installed"
    LOCKED = "locked"
    CANCELLED = "cancelled"


class CertificateStatus(StrEnum):
    """Whether a certificate is valid or revoked (its expiry is in its notAfter)."""

    VALID = "valid"
    REVOKED = "revoked"


# Where the one-time password is asked: before and right after its first use.
OTP_STEPS = (EnrollmentStatus.INVITED, EnrollmentStatus.OTP_VERIFIED)
# Once the secret answer is registered: the download window may be open and a reissue may
# start.
REISSUABLE = (
    EnrollmentStatus.SECRET_REGISTERED,
    EnrollmentStatus.DOWNLOADED,
    EnrollmentStatus.INSTALLED,
)


class RevocationReason(StrEnum):
    """Why a certificate is revoked: an RFC 5280 reason code (by cryptography's names).
    certificateHold is not one: a revocation here is final."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"


class DeliveryState(StrEnum):
    """How a webhook event's delivery went: pending (tried again later), delivered, or
    failed (given up)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class AuthorityRole(StrEnum):
    """What one of our CAs or delegated signers is for."""

    ROOT = "root"
    ISSUING = "issuing"
    OCSP = "ocsp"
    ASSERTION = "assertion"


class AuthorityStatus(StrEnum):
    """Whether a CA or signer is in use or retired (a retired CA still answers for the
    certificates it issued)."""

    ACTIVE = "active"
    RETIRED = "retired"


class AccountStatus(StrEnum):
    """Whether a relying site may use the API, or an officer sign in to the console. A
    disabled one stays recorded: the audit log names it."""

    ACTIVE = "active"
    DISABLED = "disabled"


class CeremonyKind(StrEnum):
    """What a key ceremony changes."""

    NEW_ISSUING_CA = "new_issuing_ca"
    RETIRE_ISSUING_CA = "retire_issuing_ca"


class CeremonyStatus(StrEnum):
    """Where a key ceremony stands; only OPEN ones can be approved, rejected or executed."""

    OPEN = "open"
    EXECUTED = "executed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
