"""Certificate authorities, the certificates they signed and their CRLs."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from pwa_server.store.tables.base import UTCDateTime, metadata, words
from pwa_server.vocabulary import AuthorityRole, AuthorityStatus, CertificateStatus

# A CA whose private key lives in the token, recorded by reference (never a PIN).
certificate_authorities = Table(
    "certificate_authorities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", words(AuthorityRole, 16), nullable=False),
    Column("parent_id", Integer, ForeignKey("certificate_authorities.id"), nullable=True),
    Column("key_token_label", String(32), nullable=False),
    Column("key_label", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("key_algorithm", String(16), nullable=False),
    Column("certificate_der", LargeBinary, nullable=False),
    Column("sha256_fingerprint", String(64), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("status", words(AuthorityStatus, 16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Every certificate a CA of ours signed, written before any byte of it leaves the server.
certificates = Table(
    "certificates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issuer_id", Integer, ForeignKey("certificate_authorities.id"), nullable=False),
    Column("serial", String(42), nullable=False),  # lower-case hex, up to 20 octets
    Column("profile", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("certificate_der", LargeBinary, nullable=False),
    Column("sha256_fingerprint", String(64), nullable=False, unique=True),
    Column("status", words(CertificateStatus, 16), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revocation_reason", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("enrollment_id", String(32), ForeignKey("enrollments.id"), nullable=True),
    UniqueConstraint("issuer_id", "serial", name="uq_certificates_issuer_serial"),
    # The CRL reads one CA's revoked certificates in id order straight from this index: with
    # only the unique index above, the database fetches every certificate of the CA and sorts.
    Index("ix_certificates_issuer_status_id", "issuer_id", "status", "id"),
)

# The current CRL of each CA, shared by every worker and instance. crl_number is the number
# claimed last and only grows; a CRL is built after its claim is committed, and kept only if no
# revocation was counted in generation meanwhile and no newer CRL (stored_number) was kept.
crl_state = Table(
    "crl_state",
    metadata,
    Column("authority_id", Integer, ForeignKey("certificate_authorities.id"), primary_key=True),
    Column("crl_number", Integer, nullable=False),
    Column("crl_der", LargeBinary, nullable=True),
    Column("this_update", UTCDateTime, nullable=True),
    Column("next_update", UTCDateTime, nullable=True),
    Column("stale", Boolean, nullable=False),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("stored_number", Integer, nullable=True),
)
