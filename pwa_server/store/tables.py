"""The database schema, in SQLAlchemy Core. Alembic migrations create exactly these tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A CA whose private key lives in the token, recorded by reference (never a PIN).
certificate_authorities = Table(
    "certificate_authorities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # root | issuing
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
    Column("status", String(16), nullable=False),  # active | retired
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
    Column("status", String(16), nullable=False),  # valid | revoked
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revocation_reason", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("enrollment_id", String(32), ForeignKey("enrollments.id"), nullable=True),
    UniqueConstraint("issuer_id", "serial", name="uq_certificates_issuer_serial"),
)

# One invitation to put a certificate on a phone, and where it stands. Secrets are stored only
# as Argon2id hashes; counters change by conditional UPDATEs so that concurrent requests
# can never exceed a limit.
enrollments = Table(
    "enrollments",
    metadata,
    Column("id", String(32), primary_key=True),  # random, in the enrollment URL
    Column("user_id", String(255), nullable=False),  # the site's user id
    Column("email", String(320), nullable=False),
    Column("display_name", String(255), nullable=True),
    Column("profile", String(32), nullable=False),
    Column("certificate_user_id", String(64), nullable=False, unique=True),  # our CN
    Column("status", String(24), nullable=False),
    Column("one_time_password_hash", String(255), nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),  # the issuance notice date
    Column("otp_verified_at", UTCDateTime, nullable=True),
    Column("secret_question", String(32), nullable=True),
    Column("secret_answer_hash", String(255), nullable=True),
    Column("download_password_hash", String(255), nullable=True),
    Column("download_password_issued_at", UTCDateTime, nullable=True),
    Column("downloads", Integer, nullable=False),
    Column("first_download_at", UTCDateTime, nullable=True),
    Column("download_deadline", UTCDateTime, nullable=True),
    Column("installed_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The transactional outbox: written in the same transaction as the change it reports,
# delivered afterwards by a background sender with retries.
outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(16), nullable=False),  # mail | webhook
    Column("destination", String(2048), nullable=False),
    Column("subject", String(998), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("failed_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
)

# The current CRL of each CA, shared by every worker and instance. The number only grows: each
# new CRL claims the next one in the same transaction that stores it.
crl_state = Table(
    "crl_state",
    metadata,
    Column("authority_id", Integer, ForeignKey("certificate_authorities.id"), primary_key=True),
    Column("crl_number", Integer, nullable=False),
    Column("crl_der", LargeBinary, nullable=True),
    Column("this_update", UTCDateTime, nullable=True),
    Column("next_update", UTCDateTime, nullable=True),
    Column("stale", Boolean, nullable=False),
)
