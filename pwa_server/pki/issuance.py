"""The issuance pipeline: apply the profile, sign in the token, record, then hand out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection

from pwa_server.pki.authority import Authority, fingerprint
from pwa_server.pki.profiles import Profile, PublicationUrls, PublicKey, extensions
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
    profile: Profile,
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
    profile: Profile,
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
