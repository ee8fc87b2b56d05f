"""The CA's certificate revocation list: signed in the token, shared through the database,
signed anew after every revocation and a day before nextUpdate."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine

from pwa_server.pki.authority import Authority
from pwa_server.store.certificates import RevokedEntry, revoked_entries
from pwa_server.store.crls import claim_crl_number, current_crl_row, store_crl

CRL_LIFETIME = dt.timedelta(days=7)
REFRESH_BEFORE = dt.timedelta(days=1)
MEDIA_TYPE = "application/pkix-crl"

_REASONS = {flag.value: flag for flag in x509.ReasonFlags}


def sign_crl(
    authority: Authority, entries: list[RevokedEntry], *, number: int, now: dt.datetime
) -> x509.CertificateRevocationList:
    """A CRL of `entries`, numbered `number`, valid for CRL_LIFETIME, signed in the token."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(now)
        .next_update(now + CRL_LIFETIME)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.private_key.public_key()),
            critical=False,
        )
    )
    for entry in entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(entry.serial, 16))
            .revocation_date(entry.revoked_at)
        )
        reason = _REASONS.get(entry.reason or "")
        if reason is not None and reason is not x509.ReasonFlags.unspecified:
            revoked = revoked.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(authority.private_key, hashes.SHA256())


def current_crl(engine: Engine, authority: Authority, *, now: dt.datetime) -> bytes:
    """The CRL in DER: the stored one while it is fresh, otherwise a new one."""
    with engine.connect() as connection:
        stored = current_crl_row(connection, authority.id)
    if (
        stored is not None
        and stored.crl_der is not None
        and stored.next_update is not None
        and not stored.stale
        and stored.next_update - now > REFRESH_BEFORE
    ):
        return stored.crl_der
    with engine.begin() as connection:
        number = claim_crl_number(connection, authority.id)
        crl = sign_crl(authority, revoked_entries(connection, authority.id), number=number, now=now)
        der = crl.public_bytes(Encoding.DER)
        store_crl(
            connection,
            authority.id,
            crl_number=number,
            crl_der=der,
            this_update=now,
            next_update=now + CRL_LIFETIME,
        )
    return der
