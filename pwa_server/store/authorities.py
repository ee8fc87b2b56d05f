"""Rows of certificate_authorities: CA certificates and references to their token keys."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from pwa_server.store.tables import certificate_authorities, certificates


@dataclass(frozen=True)
class AuthorityRow:
    """A stored CA: its certificate and where its private key lives."""

    id: int
    name: str
    role: str
    parent_id: int | None
    key_token_label: str
    key_label: str
    key_id: str
    key_algorithm: str
    certificate_der: bytes
    sha256_fingerprint: str
    status: str


def insert_authority(
    connection: Connection,
    *,
    name: str,
    role: str,
    parent_id: int | None,
    key_token_label: str,
    key_label: str,
    key_id: str,
    key_algorithm: str,
    certificate_der: bytes,
    sha256_fingerprint: str,
    subject: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    created_at: dt.datetime,
) -> int:
    """Record a new active CA and return its id."""
    result = connection.execute(
        insert(certificate_authorities).values(
            name=name,
            role=role,
            parent_id=parent_id,
            key_token_label=key_token_label,
            key_label=key_label,
            key_id=key_id,
            key_algorithm=key_algorithm,
            certificate_der=certificate_der,
            sha256_fingerprint=sha256_fingerprint,
            subject=subject,
            not_before=not_before,
            not_after=not_after,
            status="active",
            created_at=created_at,
        )
    )
    inserted = result.inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database returned no id for the new CA")
    return int(inserted[0])


# The columns an AuthorityRow holds (the table has more: subject and validity, for queries).
_ROW_COLUMNS = [certificate_authorities.c[name] for name in AuthorityRow.__dataclass_fields__]


def active_authority(connection: Connection, role: str) -> AuthorityRow | None:
    """The newest active CA with `role`, or None before `shomei init`."""
    table = certificate_authorities
    row = connection.execute(
        select(*_ROW_COLUMNS)
        .where(table.c.role == role, table.c.status == "active")
        .order_by(table.c.id.desc())
        .limit(1)
    ).one_or_none()
    return AuthorityRow(**row._mapping) if row is not None else None


def active_authority_under(
    connection: Connection, role: str, parent_id: int
) -> AuthorityRow | None:
    """The newest active signer with `role` certified by the CA `parent_id`, or None."""
    table = certificate_authorities
    row = connection.execute(
        select(*_ROW_COLUMNS)
        .where(table.c.role == role, table.c.status == "active", table.c.parent_id == parent_id)
        .order_by(table.c.id.desc())
        .limit(1)
    ).one_or_none()
    return AuthorityRow(**row._mapping) if row is not None else None


def issued_count(connection: Connection, authority_id: int) -> int:
    """How many certificates the CA has signed."""
    count = connection.execute(
        select(func.count())
        .select_from(certificates)
        .where(certificates.c.issuer_id == authority_id)
    ).scalar_one()
    return int(count)


def all_authorities(connection: Connection) -> list[AuthorityRow]:
    """Every CA and delegated signer, active and retired, oldest first (the console lists them)."""
    rows = connection.execute(select(*_ROW_COLUMNS).order_by(certificate_authorities.c.id)).all()
    return [AuthorityRow(**row._mapping) for row in rows]
