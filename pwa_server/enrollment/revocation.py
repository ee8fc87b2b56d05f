"""Revocation of issued certificates, with an RFC 5280 reason, announced to the site."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine

from pwa_server.audit import CLI, Actor, AuditAction, record
from pwa_server.enrollment.errors import (
    CertificateAlreadyRevokedError,
    CertificateNotFoundError,
    InvalidInputError,
)
from pwa_server.sites.webhooks import EventType, enqueue_event
from pwa_server.store import certificates as store
from pwa_server.store.certificates import RevokedCertificate
from pwa_server.vocabulary import RevocationReason, word_of


def revoke(
    engine: Engine,
    *,
    issuer_id: int,
    serial: str,
    reason: str,
    now: dt.datetime,
    site_id: int | None = None,
    actor: Actor = CLI,
) -> RevokedCertificate:
    """Revoke the certificate `serial` of the CA; with `site_id`, only one of that site's.

    An unknown serial, another site's certificate and one already revoked all raise
    CertificateNotFoundError (one of the site's own that is revoked already, its subclass
    CertificateAlreadyRevokedError), so a site learns nothing of others.
    """
    chosen = word_of(RevocationReason, reason)
    if chosen is None:
        raise InvalidInputError("reason", "one of " + ", ".join(RevocationReason))
    serial = serial.lower().lstrip("0") or "0"
    with engine.begin() as connection:
        row = store.certificate_row(connection, issuer_id, serial)
        if row is None or (site_id is not None and store.site_of(connection, row.id) != site_id):
            raise CertificateNotFoundError(serial)
        revoked = store.revoke_certificate(connection, issuer_id, serial, reason=chosen, now=now)
        if not revoked:
            raise CertificateAlreadyRevokedError(serial)
        announce_revoked(connection, revoked, reason=chosen, now=now)
        record_revoked(connection, revoked, reason=chosen, actor=actor, now=now)
    return revoked[0]


def announce_revoked(
    connection: Connection,
    revoked: list[RevokedCertificate],
    *,
    reason: RevocationReason,
    now: dt.datetime,
) -> None:
    """Queue certificate.revoked for each certificate that belongs to a site's enrollment."""
    for certificate in revoked:
        if certificate.enrollment_id is not None:
            enqueue_event(
                connection,
                enrollment_id=certificate.enrollment_id,
                event=EventType.CERTIFICATE_REVOKED,
                data={"serial": certificate.serial, "reason": reason},
                now=now,
            )


def record_revoked(
    connection: Connection,
    revoked: list[RevokedCertificate],
    *,
    reason: RevocationReason,
    actor: Actor,
    now: dt.datetime,
    replaced_by: str | None = None,
) -> None:
    """Record certificate.revoked for each certificate, in the revoking transaction (after
    its changes: the audit head is locked last). `replaced_by`: the serial that superseded
    them."""
    for certificate in revoked:
        details: dict[str, str | int | None] = {
            "reason": reason,
            "issuer_id": certificate.issuer_id,
            "enrollment_id": certificate.enrollment_id,
        }
        if replaced_by is not None:
            details["replaced_by"] = replaced_by
        record(
            connection,
            actor_kind=actor.kind,
            actor=actor.name,
            action=AuditAction.CERTIFICATE_REVOKED,
            subject_kind="certificate",
            subject=certificate.serial,
            details=details,
            now=now,
        )
