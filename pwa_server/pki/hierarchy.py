"""Creating the CA hierarchy: a root CA, an issuing CA and the signers it certifies (OCSP
responder, return assertion signer), all with keys made in the token."""

from __future__ import annotations

import datetime as dt
import secrets

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, Engine

from hsm import KeyAlgorithm, KeyRef, Token
from pwa_server.pki.authority import Authority, fingerprint, load_authority
from pwa_server.pki.issuance import sign_certificate
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.store.authorities import active_authority, active_authority_under, insert_authority
from pwa_server.vocabulary import AuthorityRole

ROOT_LIFETIME = dt.timedelta(days=20 * 365 + 5)
ISSUING_LIFETIME = dt.timedelta(days=10 * 365 + 2)
OCSP_RESPONDER_LIFETIME = dt.timedelta(days=365)
ASSERTION_SIGNER_LIFETIME = dt.timedelta(days=365)
# A delegated signer (OCSP responder, return assertion signer) is renewed this long before
# its certificate ends.
RENEW_SIGNER_BEFORE = dt.timedelta(days=30)
_ISSUED = {
    AuthorityRole.ISSUING: (CertificateProfile.ISSUING_CA, ISSUING_LIFETIME),
    AuthorityRole.OCSP: (CertificateProfile.OCSP_RESPONDER, OCSP_RESPONDER_LIFETIME),
    AuthorityRole.ASSERTION: (CertificateProfile.ASSERTION_SIGNER, ASSERTION_SIGNER_LIFETIME),
}
_TITLES = {
    AuthorityRole.ROOT: "Root CA",
    AuthorityRole.ISSUING: "Issuing CA",
    AuthorityRole.OCSP: "OCSP Responder",
    AuthorityRole.ASSERTION: "Return Assertion Signer",
}


def ca_name(organization: str, role: AuthorityRole) -> x509.Name:
    """Subject of our CA and signer certificates: 'O=<org>, CN=<org> Root CA'."""
    title = _TITLES[role]
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} {title}"),
        ]
    )


def ensure_hierarchy(
    engine: Engine, token: Token, *, organization: str, now: dt.datetime
) -> tuple[Authority, Authority, list[str]]:
    """The active root and issuing CAs, created if absent; also the names of what was created."""
    created: list[str] = []
    with engine.connect() as connection:
        has_root = active_authority(connection, AuthorityRole.ROOT) is not None
        has_issuing = active_authority(connection, AuthorityRole.ISSUING) is not None
    if not has_root:
        _create_authority(engine, token, organization, AuthorityRole.ROOT, None, now)
        created.append("root CA")
    root = load_authority(engine, token, AuthorityRole.ROOT)
    if not has_issuing:
        _create_authority(engine, token, organization, AuthorityRole.ISSUING, root, now)
        created.append("issuing CA")
    return root, load_authority(engine, token, AuthorityRole.ISSUING), created


def ensure_ocsp_responder(
    engine: Engine, token: Token, *, organization: str, issuing: Authority, now: dt.datetime
) -> bool:
    """A delegated OCSP responder for the issuing CA, its key in the token; True if made."""
    return _ensure_delegated_signer(engine, token, AuthorityRole.OCSP, organization, issuing, now)


def ensure_assertion_signer(
    engine: Engine, token: Token, *, organization: str, issuing: Authority, now: dt.datetime
) -> bool:
    """The key that signs return assertions for relying sites, in the token, certified by the
    issuing CA (sites find its certificate chain in the published JWKS); True if made."""
    return _ensure_delegated_signer(
        engine, token, AuthorityRole.ASSERTION, organization, issuing, now
    )


def _ensure_delegated_signer(
    engine: Engine,
    token: Token,
    role: AuthorityRole,
    organization: str,
    issuing: Authority,
    now: dt.datetime,
) -> bool:
    """A key of `role` certified by `issuing`; True if a new one was made.

    A new one is made when `issuing` certified none, or when less than RENEW_SIGNER_BEFORE
    remains of the newest; the newest is the one in use. Looked up by issuer, so that the
    OCSP responder of an issuing CA retired by a key ceremony is renewed as well.
    """
    with engine.connect() as connection:
        current = active_authority_under(connection, role, issuing.id)
    if current is not None:
        certificate = x509.load_der_x509_certificate(current.certificate_der)
        if certificate.not_valid_after_utc - now > RENEW_SIGNER_BEFORE:
            return False
    _create_authority(engine, token, organization, role, issuing, now)
    return True


def _create_authority(
    engine: Engine,
    token: Token,
    organization: str,
    role: AuthorityRole,
    parent: Authority | None,
    now: dt.datetime,
) -> None:
    ref, certificate = certify_new_key(
        token, role=role, subject=ca_name(organization, role), parent=parent, now=now
    )
    try:
        with engine.begin() as connection:
            record_authority(
                connection,
                name=ref.label,
                role=role,
                parent_id=parent.id if parent else None,
                ref=ref,
                certificate=certificate,
                now=now,
            )
    except BaseException:
        # A key without a recorded CA is an orphan nobody could find or retire: remove it.
        token.destroy_key(ref)
        raise


def certify_new_key(
    token: Token,
    *,
    role: AuthorityRole,
    subject: x509.Name,
    parent: Authority | None,
    now: dt.datetime,
) -> tuple[KeyRef, x509.Certificate]:
    """A new key pair for a CA or signer of `role`, made in the token, and its certificate:
    self-signed for the root, otherwise signed by `parent` (its lifetime capped by the parent's).

    The caller records both (record_authority) or destroys the key; if the certificate cannot
    be made, the key is destroyed here.
    """
    algorithm = KeyAlgorithm.EC_P384 if role == AuthorityRole.ROOT else KeyAlgorithm.EC_P256
    label = f"shomei-{role}-{now:%Y%m%d}-{secrets.token_hex(3)}"
    ref = token.generate_key(algorithm, label)
    try:
        key = token.private_key(ref)
        if parent is None:
            certificate = sign_certificate(
                key,
                subject=subject,
                public_key=key.public_key(),
                issuer_name=subject,
                issuer_public_key=key.public_key(),
                profile=CertificateProfile.ROOT_CA,
                not_before=now,
                not_after=now + ROOT_LIFETIME,
            )
        else:
            profile, lifetime = _ISSUED[role]
            certificate = sign_certificate(
                parent.private_key,
                subject=subject,
                public_key=key.public_key(),
                issuer_name=parent.certificate.subject,
                issuer_public_key=parent.private_key.public_key(),
                profile=profile,
                not_before=now,
                not_after=min(now + lifetime, parent.certificate.not_valid_after_utc),
            )
    except BaseException:
        token.destroy_key(ref)
        raise
    return ref, certificate


def record_authority(
    connection: Connection,
    *,
    name: str,
    role: AuthorityRole,
    parent_id: int | None,
    ref: KeyRef,
    certificate: x509.Certificate,
    now: dt.datetime,
) -> int:
    """Record a CA: its certificate and the reference of its key in the token (never a PIN)."""
    return insert_authority(
        connection,
        name=name,
        role=role,
        parent_id=parent_id,
        key_token_label=ref.token_label,
        key_label=ref.label,
        key_id=ref.key_id.hex(),
        key_algorithm=ref.algorithm.value,
        certificate_der=certificate.public_bytes(Encoding.DER),
        sha256_fingerprint=fingerprint(certificate),
        subject=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        created_at=now,
    )
