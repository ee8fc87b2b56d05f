"""The issuance pipeline: validate the request, apply the certificate profile, sign in the
token, record, audit; then the caller hands the certificate out.

`Issuance` is the one way an end-user certificate is made: the PKCS#12 download (and so the
renewal, which is a download) calls it, and so will the ACME and SCEP endpoints. `issue` is
its signing and recording step, also used for the server's own certificates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection

from pwa_server.audit import Actor, AuditAction, JsonValue, record
from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.pki.authority import Authority, fingerprint
from pwa_server.pki.key_profiles import KEY_SPECS, key_name
from pwa_server.pki.profiles import CertificateProfile, PublicationUrls, PublicKey, extensions
from pwa_server.store.certificates import insert_certificate

# Clocks of phones and servers drift; a certificate valid from a few minutes ago is accepted
# by a device whose clock is a little behind.
BACKDATE = dt.timedelta(minutes=5)


def sign_certificate(
    signing_key: CertificateIssuerPrivateKeyTypes,
    *,
    subject: x509.Name,
    public_key: PublicKey,
    issuer_name: x509.Name,
    issuer_public_key: PublicKey,
    profile: CertificateProfile,
    not_before: dt.datetime,
    not_after: dt.datetime,
    alt_names: Sequence[str] = (),
    urls: PublicationUrls | None = None,
) -> x509.Certificate:
    """Build a certificate of `profile` and sign it with `signing_key` (SHA-256)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions(profile, public_key, issuer_public_key, alt_names, urls):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def issue(
    connection: Connection,
    issuer: Authority,
    *,
    subject: x509.Name,
    public_key: PublicKey,
    profile: CertificateProfile,
    now: dt.datetime,
    lifetime: dt.timedelta,
    alt_names: Sequence[str] = (),
    enrollment_id: str | None = None,
    urls: PublicationUrls | None = None,
) -> tuple[x509.Certificate, int]:
    """Sign a certificate with `issuer` and record it on `connection`; returns it and its row id.

    The caller owns the transaction: the certificate must be committed before any byte of it
    is sent, so that every certificate that ever left the server can be revoked.
    """
    issuer_certificate = issuer.certificate
    not_after = min(now + lifetime, issuer_certificate.not_valid_after_utc)
    certificate = sign_certificate(
        issuer.private_key,
        subject=subject,
        public_key=public_key,
        issuer_name=issuer_certificate.subject,
        issuer_public_key=issuer.private_key.public_key(),
        profile=profile,
        not_before=now - BACKDATE,
        not_after=not_after,
        alt_names=alt_names,
        urls=urls,
    )
    record_id = insert_certificate(
        connection,
        issuer_id=issuer.id,
        serial=format(certificate.serial_number, "x"),
        profile=profile.value,
        subject=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        certificate_der=certificate.public_bytes(Encoding.DER),
        sha256_fingerprint=fingerprint(certificate),
        created_at=now,
        enrollment_id=enrollment_id,
    )
    return certificate, record_id


# X.520's upper bound for a common name (RFC 5280 appendix A).
MAX_COMMON_NAME = 64


class RefusedRequestError(ShomeiError):
    """A certificate request the pipeline will not sign (nothing is stored or audited)."""

    kind = ErrorKind.INVALID


@dataclass(frozen=True)
class CertificateRequest:
    """A request for an end-user certificate: a public key in, a certificate out.

    The pipeline never sees a private key. Whoever asks made the key pair where it suits
    them: the PKCS#12 download makes one in memory and packages it; the ACME and SCEP
    endpoints (issue 18) will take the public key of a CSR whose key was made on the device,
    and pass it here as it is. `public_key` is any key a CSR can carry: the pipeline refuses
    what `key_profile` does not name.
    """

    certificate_user_id: str  # the subject's common name
    public_key: CertificatePublicKeyTypes
    key_profile: str
    # When the certificate should expire; the issuing CA's own expiry caps it.
    not_after: dt.datetime
    # Who asks, as the audit log names them: the user behind an enrollment, a device, ...
    requester: Actor
    enrollment_id: str | None = None
    # Facts of the caller's own for the audit event (the platform of a download, say).
    facts: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Issued:
    """A certificate signed and recorded (not yet committed: the caller owns the transaction)."""

    certificate: x509.Certificate
    record_id: int

    @property
    def serial(self) -> str:
        """The serial as the database and the audit log write it (lower-case hex)."""
        return format(self.certificate.serial_number, "x")


class Issuance:
    """End-user (client) certificates from one issuing CA, for one organisation."""

    def __init__(self, issuing: Authority, *, organization: str, urls: PublicationUrls) -> None:
        self.issuing = issuing
        self.organization = organization
        self.urls = urls

    @contextlib.contextmanager
    def issue(
        self, connection: Connection, request: CertificateRequest, *, now: dt.datetime
    ) -> Iterator[Issued]:
        """Validate `request`, sign its certificate and record it on `connection`; yield it,
        and audit it when the caller's block ends without an error.

        The caller packages and delivers inside the block, in the same transaction: the
        certificate must be committed before any byte of it is sent, so that every
        certificate that ever left the server can be revoked; a failure inside the block
        leaves no audit event, and the transaction's rollback leaves no certificate. The
        audit event is appended last, once nothing can fail but the commit, so that the
        audit head stays locked only briefly. A refused request raises RefusedRequestError
        before anything is written. An endpoint with nothing to add (ACME, SCEP) leaves the
        block empty and sends `issued.certificate` after the commit.
        """
        public_key = _checked(request, now)
        certificate, record_id = issue(
            connection,
            self.issuing,
            subject=x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
                    x509.NameAttribute(NameOID.COMMON_NAME, request.certificate_user_id),
                ]
            ),
            public_key=public_key,
            profile=CertificateProfile.CLIENT,
            now=now,
            lifetime=request.not_after - now,
            enrollment_id=request.enrollment_id,
            urls=self.urls,
        )
        issued = Issued(certificate, record_id)
        yield issued
        record(
            connection,
            actor_kind=request.requester.kind,
            actor=request.requester.name,
            action=AuditAction.CERTIFICATE_ISSUED,
            subject_kind="certificate",
            subject=issued.serial,
            details={
                **request.facts,
                "serial": issued.serial,
                "profile": request.key_profile,
                "issuer_id": self.issuing.id,
                "enrollment_id": request.enrollment_id,
                "certificate_user_id": request.certificate_user_id,
                "not_after": certificate.not_valid_after_utc.isoformat(),
            },
            now=now,
        )


def _checked(request: CertificateRequest, now: dt.datetime) -> PublicKey:
    """The request's public key, once every part of the request is found acceptable."""
    spec = KEY_SPECS.get(request.key_profile)
    if spec is None:
        raise RefusedRequestError(f"no key profile {request.key_profile!r}")
    public_key = spec.fitting(request.public_key)
    if public_key is None:
        raise RefusedRequestError(
            f"key profile {request.key_profile} takes an {spec} key,"
            f" not {key_name(request.public_key)}"
        )
    if not 0 < len(request.certificate_user_id) <= MAX_COMMON_NAME:
        raise RefusedRequestError(f"a certificate user ID has 1 to {MAX_COMMON_NAME} characters")
    if request.not_after <= now:
        raise RefusedRequestError(f"the certificate would expire at once ({request.not_after})")
    return public_key
