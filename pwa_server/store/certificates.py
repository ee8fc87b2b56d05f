"""Rows of certificates: every certificate a CA of ours signed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from pwa_server.store.crls import mark_crl_stale
from pwa_server.store.tables import certificates


def insert_certificate(
    connection: Connection,
    *,
    issuer_id: int,
    serial: str,
    profile: str,
    subject: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    certificate_der: bytes,
    sha256_fingerprint: str,
    created_at: dt.datetime,
    enrollment_id: str | None = None,
) -> int:
    """Record an issued certificate as valid and return its id."""
    result = connection.execute(
        insert(certificates).values(
            issuer_id=issuer_id,
            serial=serial,
            profile=profile,
            subject=subject,
            not_before=not_before,
            not_after=not_after,
            certificate_der=certificate_der,
            sha256_fingerprint=sha256_fingerprint,
            status="valid",
            created_at=created_at,
            enrollment_id=enrollment_id,
        )
    )
    inserted = result.inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database returned no id for the new certificate")
    return int(inserted[0])


def certificate_by_serial(connection: Connection, issuer_id: int, serial: str) -> bytes | None:
    """The DER of the certificate `serial` of the CA, or None if it never issued it."""
    der = connection.execute(
        select(certificates.c.certificate_der).where(
            certificates.c.issuer_id == issuer_id, certificates.c.serial == serial
        )
    ).scalar_one_or_none()
    return bytes(der) if der is not None else None


@dataclass(frozen=True)
class CertificateRow:
    """What the installation check needs to judge a presented certificate."""

    id: int
    serial: str
    status: str
    enrollment_id: str | None
    certificate_der: bytes
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: str | None


def certificate_row(connection: Connection, issuer_id: int, serial: str) -> CertificateRow | None:
    """The stored certificate `serial` of the CA, or None."""
    table = certificates
    row = connection.execute(
        select(
            table.c.id,
            table.c.serial,
            table.c.status,
            table.c.enrollment_id,
            table.c.certificate_der,
            table.c.not_after,
            table.c.revoked_at,
            table.c.revocation_reason,
        ).where(table.c.issuer_id == issuer_id, table.c.serial == serial)
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    values["certificate_der"] = bytes(values["certificate_der"])
    return CertificateRow(**values)


def revoke_superseded(
    connection: Connection,
    enrollment_id: str,
    *,
    issuer_id: int,
    keep_id: int,
    now: dt.datetime,
) -> int:
    """Revoke the enrollment's other valid certificates (reissue: lost phone, new password).

    The CA's CRL is marked stale in the same transaction, so that it is signed anew.
    """
    result = connection.execute(
        update(certificates)
        .where(
            certificates.c.enrollment_id == enrollment_id,
            certificates.c.id != keep_id,
            certificates.c.status == "valid",
        )
        .values(status="revoked", revoked_at=now, revocation_reason="superseded")
    )
    if result.rowcount:
        mark_crl_stale(connection, issuer_id)
    return int(result.rowcount)


@dataclass(frozen=True)
class RevokedEntry:
    """One line of a CRL."""

    serial: str
    revoked_at: dt.datetime
    reason: str | None


def revoked_entries(connection: Connection, issuer_id: int) -> list[RevokedEntry]:
    """Every revoked certificate of the CA, expired ones included (RFC 5280 allows either)."""
    rows = connection.execute(
        select(certificates.c.serial, certificates.c.revoked_at, certificates.c.revocation_reason)
        .where(certificates.c.issuer_id == issuer_id, certificates.c.status == "revoked")
        .order_by(certificates.c.id)
    ).all()
    return [RevokedEntry(row.serial, row.revoked_at, row.revocation_reason) for row in rows]
