"""Rows of certificate_authorities: CA certificates and references to their token keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from pwa_server.store.tables import certificate_authorities, certificates
from pwa_server.vocabulary import AuthorityRole, AuthorityStatus


@dataclass(frozen=True)
class AuthorityRow:
    """A stored CA: its certificate and where its private key lives."""

    id: int
    name: str
    role: AuthorityRole
    parent_id: int | None
    key_token_label: str
    key_label: str
    key_id: str
    key_algorithm: str
    certificate_der: bytes
    sha256_fingerprint: str
    status: AuthorityStatus


def insert_authority(
    connection: Connection,
    *,
    name: str,
    role: AuthorityRole,
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
            status=AuthorityStatus.ACTIVE,
            created_at=created_at,
        )
    )
    inserted = result.inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database returned no id for the new CA")
    return int(inserted[0])


# The columns an AuthorityRow holds (the table has more: subject and validity, for queries).
_ROW_COLUMNS = [certificate_authorities.c[name] for name in AuthorityRow.__dataclass_fields__]


def active_authority(connection: Connection, role: AuthorityRole) -> AuthorityRow | None:
    """The newest active CA with `role`, or None before `shomei init`."""
    table = certificate_authorities
    row = connection.execute(
        select(*_ROW_COLUMNS)
        .where(table.c.role == role, table.c.status == AuthorityStatus.ACTIVE)
        .order_by(table.c.id.desc())
        .limit(1)
    ).one_or_none()
    return AuthorityRow(**row._mapping) if row is not None else None


def active_authority_under(
    connection: Connection, role: AuthorityRole, parent_id: int
) -> AuthorityRow | None:
    """The newest active signer with `role` certified by the CA `parent_id`, or None."""
    table = certificate_authorities
    row = connection.execute(
        select(*_ROW_COLUMNS)
        .where(
            table.c.role == role,
            table.c.status == AuthorityStatus.ACTIVE,
            table.c.parent_id == parent_id,
        )
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


# What key ceremonies do to CAs: look them up, count, retire


def _authority(row: object) -> AuthorityRow:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["certificate_der"] = bytes(values["certificate_der"])
    return AuthorityRow(**values)


def authority_by_id(connection: Connection, authority_id: int) -> AuthorityRow | None:
    row = connection.execute(
        select(*_ROW_COLUMNS).where(certificate_authorities.c.id == authority_id)
    ).one_or_none()
    return _authority(row) if row is not None else None


def authorities_with_role(
    connection: Connection,
    role: AuthorityRole,
    *,
    statuses: Sequence[AuthorityStatus] = tuple(AuthorityStatus),
) -> list[AuthorityRow]:
    """The CAs (or signers) of `role` with one of `statuses`, the newest first."""
    table = certificate_authorities
    rows = connection.execute(
        select(*_ROW_COLUMNS)
        .where(table.c.role == role, table.c.status.in_(list(statuses)))
        .order_by(table.c.id.desc())
    )
    return [_authority(row) for row in rows]


def count_authorities(connection: Connection, role: AuthorityRole) -> int:
    """How many CAs of `role` were ever recorded, whatever their status."""
    count = connection.execute(
        select(func.count())
        .select_from(certificate_authorities)
        .where(certificate_authorities.c.role == role)
    ).scalar_one()
    return int(count)


def retire_authority(connection: Connection, authority_id: int) -> bool:
    """Mark an active CA retired; False when it is not active (retired meanwhile)."""
    table = certificate_authorities
    outcome = connection.execute(
        update(table)
        .where(table.c.id == authority_id, table.c.status == AuthorityStatus.ACTIVE)
        .values(status=AuthorityStatus.RETIRED)
    )
    return outcome.rowcount == 1


def retire_authority_unless_last(
    connection: Connection, authority_id: int, *, role: AuthorityRole
) -> bool:
    """Retire an active CA of `role` unless it is the last active one; False otherwise."""
    table = certificate_authorities
    # PostgreSQL: two ceremonies retiring two CAs at once must not both see one left over.
    connection.execute(
        select(table.c.id)
        .where(table.c.role == role, table.c.status == AuthorityStatus.ACTIVE)
        .with_for_update()
    ).all()
    others = (
        select(func.count())
        .select_from(table)
        .where(
            table.c.role == role,
            table.c.status == AuthorityStatus.ACTIVE,
            table.c.id != authority_id,
        )
        .scalar_subquery()
    )
    outcome = connection.execute(
        update(table)
        .where(table.c.id == authority_id, table.c.status == AuthorityStatus.ACTIVE, others > 0)
        .values(status=AuthorityStatus.RETIRED)
    )
    return outcome.rowcount == 1
