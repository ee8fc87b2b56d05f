"""Step 7, the installation check: is the presented certificate one of ours, and usable?"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine

from pwa_server.audit import AuditAction
from pwa_server.enrollment.audit_trail import record_enrollment_event
from pwa_server.pki.authority import Authority
from pwa_server.sites.webhooks import EventType, enqueue_event
from pwa_server.store.certificates import certificate_row
from pwa_server.store.enrollments import update_enrollment
from pwa_server.vocabulary import CertificateStatus, EnrollmentStatus


class CheckStatus(enum.StrEnum):
    """The verdict, as the JSON `status` says it."""

    OK = "ok"
    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class CheckResult:
    """The verdict and, for a certificate of ours, what the page shows of it."""

    status: CheckStatus
    certificate: x509.Certificate | None = None
    certificate_user_id: str | None = None
    issuer: Authority | None = None  # which of our issuing CAs signed it


def check_installation(
    engine: Engine,
    issuers: Sequence[Authority],
    certificate: x509.Certificate | None,
    *,
    now: dt.datetime,
) -> CheckResult:
    """Judge the client certificate; a good one marks its enrollment installed.

    `issuers`: every issuing CA whose certificates may still be in use (after a key ceremony,
    the retired one's stay valid until they expire).
    """
    if certificate is None:
        return CheckResult(CheckStatus.MISSING)
    if not _for_client_authentication(certificate):
        # Our CAs also sign the listeners' TLS certificate and the assertion signer's: a
        # browser could present one, and it is no enrollment's certificate.
        return CheckResult(CheckStatus.UNKNOWN, certificate)
    issuing = next((issuer for issuer in issuers if _signed_by(certificate, issuer)), None)
    if issuing is None:
        return CheckResult(CheckStatus.UNKNOWN, certificate)
    serial = format(certificate.serial_number, "x")
    with engine.connect() as connection:
        row = certificate_row(connection, issuing.id, serial)
    if row is None or row.certificate_der != certificate.public_bytes(Encoding.DER):
        return CheckResult(CheckStatus.UNKNOWN, certificate)
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cuid = str(names[0].value) if names else None
    if row.status == CertificateStatus.REVOKED:
        return CheckResult(CheckStatus.REVOKED, certificate, cuid, issuing)
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        return CheckResult(CheckStatus.EXPIRED, certificate, cuid, issuing)
    if row.enrollment_id is None:
        # Ours, for client authentication, but issued for no enrollment: nobody's to install.
        return CheckResult(CheckStatus.UNKNOWN, certificate)
    with engine.begin() as connection:
        # The first successful check is the installation; later ones change nothing.
        if update_enrollment(
            connection,
            row.enrollment_id,
            expected_status=EnrollmentStatus.DOWNLOADED,
            status=EnrollmentStatus.INSTALLED,
            installed_at=now,
            updated_at=now,
        ):
            enqueue_event(
                connection,
                enrollment_id=row.enrollment_id,
                event=EventType.ENROLLMENT_INSTALLED,
                data={"serial": serial, "certificate_user_id": cuid},
                now=now,
            )
            # The user presented the certificate, so the installation is theirs.
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_INSTALLED,
                row.enrollment_id,
                details={"serial": serial, "certificate_user_id": cuid},
                now=now,
            )
    return CheckResult(CheckStatus.OK, certificate, cuid, issuing)


def _for_client_authentication(certificate: x509.Certificate) -> bool:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usages


def _signed_by(certificate: x509.Certificate, issuing: Authority) -> bool:
    if certificate.issuer != issuing.certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuing.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
