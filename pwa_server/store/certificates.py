"""Rows of certificates: every certificate a CA of ours signed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select

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
