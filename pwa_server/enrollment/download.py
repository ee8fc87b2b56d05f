"""Step 5: the download. A key made in memory, a certificate from the issuance pipeline
(pwa_server.pki.issuance), then packaged for the phone; the private key is never stored.

A right download password costs one read and one write transaction: the claim of the
download, the certificate, its events, audit records and outbox messages commit together.
A wrong one, for an existing certificate user ID or an unknown one, does the same work and
gets the same answer: a keyed hash (against a dummy when there is no enrollment) and a
throttle count, never a lock (throttle.py)."""

from __future__ import annotations

import datetime as dt
import enum
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import Connection, Engine

from pwa_server.audit import Actor, AuditAction, Outcome
from pwa_server.enrollment import credentials
from pwa_server.enrollment.audit_trail import record_enrollment_event
from pwa_server.enrollment.errors import (
    DownloadWindowClosedError,
    EnrollmentCancelledError,
    EnrollmentLockedError,
    WrongDownloadCredentialsError,
)
from pwa_server.enrollment.hashing import SecretHashes
from pwa_server.enrollment.policy import EnrollmentPolicy
from pwa_server.enrollment.revocation import announce_revoked, record_revoked
from pwa_server.enrollment.throttle import DownloadThrottle, client_network
from pwa_server.pki.authority import Authority
from pwa_server.pki.issuance import CertificateRequest, Issuance, Issued
from pwa_server.pki.key_profiles import KEY_SPECS
from pwa_server.pki.packaging import mobileconfig, pkcs12
from pwa_server.pki.packaging.signing_identity import SigningIdentity
from pwa_server.sites.webhooks import EventType, enqueue_event
from pwa_server.store.certificates import RevokedCertificate, revoke_superseded
from pwa_server.store.enrollments import (
    EnrollmentRow,
    claim_download,
    enrollment_by_certificate_user_id,
)
from pwa_server.store.guess_throttles import forget
from pwa_server.vocabulary import EnrollmentStatus, RevocationReason


class Platform(enum.StrEnum):
    """What the user downloads for."""

    IOS = "ios"
    ANDROID = "android"
    OTHER = "other"


# How long a wrong download password takes to answer at the least, whatever the ID: well
# above both paths' own time (5-12 ms here), so that timing tells nothing.
WRONG_ANSWER_SECONDS = 0.05


@dataclass(frozen=True)
class Delivery:
    """The bytes to send, already recorded: the certificate is in the database."""

    content: bytes
    media_type: str
    filename: str
    certificate: x509.Certificate


class Downloads:
    """Issues and packages certificates for enrollments whose download window is open."""

    def __init__(
        self,
        engine: Engine,
        policy: EnrollmentPolicy,
        *,
        issuance: Issuance,
        root: Authority,
        signing: SigningIdentity,
        identifier_prefix: str,
        hashes: SecretHashes,
    ) -> None:
        self.engine = engine
        self.hashes = hashes
        self.policy = policy
        self.issuance = issuance
        self.root = root
        self.signing = signing
        self.identifier_prefix = identifier_prefix

    @property
    def issuing(self) -> Authority:
        """The CA that signs the certificates downloaded."""
        return self.issuance.issuing

    def download(
        self,
        *,
        certificate_user_id: str,
        download_password: str,
        platform: Platform,
        now: dt.datetime,
        client: str | None = None,
    ) -> Delivery:
        """Check the password and the window, then issue, record and package one certificate.

        `client` is the address the request came from (the throttle counts per network).
        """
        throttle = DownloadThrottle(
            self.policy.download_throttle,
            credentials.normalise_identifier(certificate_user_id),
            client_network(client),
        )
        row = self._authenticate(throttle, download_password, now)
        key = KEY_SPECS[row.profile].new_private_key()
        notice = row.issuance_notice_at or row.download_password_issued_at or now
        user = Actor.user(row.id)
        request = CertificateRequest(
            certificate_user_id=row.certificate_user_id,
            public_key=key.public_key(),
            key_profile=row.profile,
            # Seed 001: the expiry counts from the issuance notice, not from the install.
            not_after=notice + self.policy.validity,
            requester=user,
            enrollment_id=row.id,
            facts={"platform": platform.value},
        )
        with self.engine.begin() as connection:
            forget(connection, [throttle.id_key])
            if not claim_download(
                connection,
                row.id,
                allowed=self.policy.downloads_allowed,
                window=self.policy.download_window,
                now=now,
            ):
                raise DownloadWindowClosedError(row.certificate_user_id)
            # The certificate is audited when this block ends (after the download's event):
            # a failed packaging leaves no event.
            with self.issuance.issue(connection, request, now=now) as issued:
                superseded = self._supersede(connection, row, issued, now)
                # Packaged inside the transaction: if packaging fails, no certificate is
                # recorded and no download is counted.
                delivery = self._package(
                    key,
                    issued.certificate,
                    row.certificate_user_id,
                    credentials.normalise_typed(download_password),
                    platform,
                )
                # Recorded last, once nothing can fail but the commit: the audit head stays
                # locked only briefly.
                record_enrollment_event(
                    connection,
                    AuditAction.ENROLLMENT_DOWNLOADED,
                    row.id,
                    details={"serial": issued.serial, "profile": row.profile, **request.facts},
                    now=now,
                )
            record_revoked(
                connection,
                superseded,
                reason=RevocationReason.SUPERSEDED,
                actor=user,
                now=now,
                replaced_by=issued.serial,
            )
        return delivery

    def _supersede(
        self, connection: Connection, row: EnrollmentRow, issued: Issued, now: dt.datetime
    ) -> list[RevokedCertificate]:
        """Tell the site of the new certificate and revoke the ones it replaces."""
        # An enrollment no site made has no webhook: skipping saves a read per event.
        if row.site_id is not None:
            enqueue_event(
                connection,
                enrollment_id=row.id,
                event=EventType.CERTIFICATE_ISSUED,
                data={
                    "serial": issued.serial,
                    "certificate_user_id": row.certificate_user_id,
                    "not_after": issued.certificate.not_valid_after_utc.isoformat(),
                },
                now=now,
            )
        # A renewal keeps the previous certificate until it expires (seed 004); a reissue
        # replaces it (a lost phone, a forgotten password).
        superseded = (
            []
            if row.keep_previous_certificate
            else revoke_superseded(connection, row.id, keep_id=issued.record_id, now=now)
        )
        if row.site_id is not None:
            announce_revoked(connection, superseded, reason=RevocationReason.SUPERSEDED, now=now)
        return superseded

    def _authenticate(
        self, throttle: DownloadThrottle, download_password: str, now: dt.datetime
    ) -> EnrollmentRow:
        started = time.monotonic()
        with self.engine.connect() as connection:
            throttle.check(connection, now=now)
            row = enrollment_by_certificate_user_id(connection, throttle.certificate_user_id)
        stored = row.download_password_hash if row is not None else None
        matched = self.hashes.verify(stored, credentials.normalise_typed(download_password))
        if matched and row is not None:
            if row.status == EnrollmentStatus.LOCKED:
                raise EnrollmentLockedError(row.id)
            if row.status == EnrollmentStatus.CANCELLED:
                raise EnrollmentCancelledError(row.id)
            return row
        with self.engine.begin() as connection:
            throttle.count_failure(connection, now=now)
            if row is not None:
                record_enrollment_event(
                    connection,
                    AuditAction.ENROLLMENT_DOWNLOAD_PASSWORD_FAILED,
                    row.id,
                    outcome=Outcome.FAILURE,
                    details={"client": throttle.client},
                    now=now,
                )
        # One answer whether the ID exists or not, and at one time: an existing ID's failure is
        # also audited (~2 ms more), so every wrong answer waits out the same floor.
        time.sleep(max(0.0, WRONG_ANSWER_SECONDS - (time.monotonic() - started)))
        raise WrongDownloadCredentialsError(throttle.certificate_user_id)

    def _package(
        self,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        name: str,
        password: str,
        platform: Platform,
    ) -> Delivery:
        p12 = pkcs12.build_pkcs12(
            private_key=key,
            certificate=certificate,
            chain=[self.issuing.certificate],
            password=password,
            friendly_name=name,
            phone_compatible=True,
        )
        if platform is not Platform.IOS:
            return Delivery(p12, pkcs12.MEDIA_TYPE, f"{name}.p12", certificate)
        configuration_profile = mobileconfig.build_configuration_profile(
            pkcs12=p12,
            root=self.root.certificate,
            certificate_user_id=name,
            organization=self.policy.organization,
            identifier_prefix=self.identifier_prefix,
        )
        signed = mobileconfig.sign_configuration_profile(
            configuration_profile,
            certificate=self.signing.certificate,
            private_key=self.signing.private_key,
            chain=self.signing.chain,
        )
        return Delivery(signed, mobileconfig.MEDIA_TYPE, f"{name}.mobileconfig", certificate)
