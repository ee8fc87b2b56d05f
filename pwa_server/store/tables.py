"""The database schema, in SQLAlchemy Core. Alembic migrations create exactly these tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
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
    UniqueConstraint("issuer_id", "serial", name="uq_certificates_issuer_serial"),
)
