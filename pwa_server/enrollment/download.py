"""Step 5: the download. A key made in memory, a certificate signed in the token and recorded,
then packaged for the phone; the private key is never stored.

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
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from pwa_server.audit import Actor, AuditAction, Outcome, record
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
from pwa_server.pki.issuance import issue
from pwa_server.pki.packaging import mobileconfig, pkcs12
from pwa_server.pki.packaging.signing_identity import SigningIdentity
from pwa_server.pki.profiles import Profile, PublicationUrls
from pwa_server.sites.webhooks import EventType, enqueue_event
from pwa_server.store.certificates import revoke_superseded
from pwa_server.store.enrollments import (
    EnrollmentRow,
    claim_download,
    enrollment_by_certificate_user_id,
    update_enrollment,
)
from pwa_server.store.guess_throttles import forget


class Platform(enum.StrEnum):
    """What the user downloads for."""

    IOS = "ios"
    ANDROID = "android"
    OTHER = "other"


# How long a wrong download password takes to answer at the least, whatever the ID: well
# above both paths' own time (5-12 ms here), so that timing tells nothing.
WRONG_ANSWER_SECONDS = 0.05

# Certificate profiles: the end-user key each one gets (EC P-256 unless a site needs RSA).
KEY_PROFILES = ("default", "rsa-2048", "rsa-3072")


def _new_key(profile: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if profile == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if profile == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


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
        issuing: Authority,
        root: Authority,
        signing: SigningIdentity,
        identifier_prefix: str,
        urls: PublicationUrls,
        hashes: SecretHashes,
    ) -> None:
        self.engine = engine
        self.hashes = hashes
        self.policy = policy
        self.issuing = issuing
        self.root = root
        self.signing = signing
        self.identifier_prefix = identifier_prefix
        self.urls = urls

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
        key = _new_key(row.profile)
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
            notice = row.issuance_notice_at or row.download_password_issued_at or now
            certificate, record_id = issue(
                connection,
                self.issuing,
                subject=x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.policy.organization),
                        x509.NameAttribute(NameOID.COMMON_NAME, row.certificate_user_id),
                    ]
                ),
                public_key=key.public_key(),
                profile=Profile.CLIENT,
                now=now,
                # Seed 001: the expiry counts from the issuance notice, not from the install.
                lifetime=notice + self.policy.validity - now,
                enrollment_id=row.id,
                urls=self.urls,
            )
            serial = format(certificate.serial_number, "x")
            enqueue_event(
                connection,
                enrollment_id=row.id,
                event=EventType.CERTIFICATE_ISSUED,
                data={
                    "serial": serial,
                    "certificate_user_id": row.certificate_user_id,
                    "not_after": certificate.not_valid_after_utc.isoformat(),
                },
                now=now,
            )
            # A renewal keeps the previous certificate until it expires (seed 004); a reissue
            # replaces it (a lost phone, a forgotten password).
            superseded = (
                []
                if row.keep_previous_certificate
                else revoke_superseded(connection, row.id, keep_id=record_id, now=now)
            )
            announce_revoked(connection, superseded, reason="superseded", now=now)
            if row.status == "secret_registered":
                update_enrollment(connection, row.id, status="downloaded", updated_at=now)
            # Packaged inside the transaction: if packaging fails, no certificate is recorded
            # and no download is counted.
            delivery = self._package(
                key,
                certificate,
                row.certificate_user_id,
                credentials.normalise_typed(download_password),
                platform,
            )
            # Recorded last, once nothing can fail but the commit: the audit head stays
            # locked only briefly, and a failed packaging leaves no event.
            facts = {"serial": serial, "profile": row.profile, "platform": platform.value}
            record_enrollment_event(
                connection, AuditAction.ENROLLMENT_DOWNLOADED, row.id, details=facts, now=now
            )
            user = Actor.user(row.id)
            record(
                connection,
                actor_kind=user.kind,
                actor=user.name,
                action=AuditAction.CERTIFICATE_ISSUED,
                subject_kind="certificate",
                subject=serial,
                details={
                    **facts,
                    "issuer_id": self.issuing.id,
                    "enrollment_id": row.id,
                    "certificate_user_id": row.certificate_user_id,
                    "not_after": certificate.not_valid_after_utc.isoformat(),
                },
                now=now,
            )
            record_revoked(
                connection, superseded, reason="superseded", actor=user, now=now, replaced_by=serial
            )
        return delivery

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
            if row.status == "locked":
                raise EnrollmentLockedError(row.id)
            if row.status == "cancelled":
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
        profile = mobileconfig.build_profile(
            pkcs12=p12,
            root=self.root.certificate,
            certificate_user_id=name,
            organization=self.policy.organization,
            identifier_prefix=self.identifier_prefix,
        )
        signed = mobileconfig.sign_profile(
            profile,
            certificate=self.signing.certificate,
            private_key=self.signing.private_key,
            chain=self.signing.chain,
        )
        return Delivery(signed, mobileconfig.MEDIA_TYPE, f"{name}.mobileconfig", certificate)
