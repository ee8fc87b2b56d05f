"""Running an approved key ceremony: each kind's change to the CA, made in the transaction
that claims the ceremony, and the record of a ceremony that failed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine

from hsm import Token
from pwa_server.audit import AuditAction, Outcome
from pwa_server.officers.key_ceremony_models import KeyCeremony
from pwa_server.officers.key_ceremony_records import (
    MAX_ERROR,
    audit,
    check_approved,
    closed,
    load_ceremony,
    require_officer,
)
from pwa_server.officers.roles import Permission
from pwa_server.pki import rollover
from pwa_server.store import ceremonies as store
from pwa_server.store.authorities import AuthorityRow
from pwa_server.vocabulary import AuthorityRole, CeremonyKind, CeremonyStatus

_CA_SUBJECT_KIND = "certificate_authority"


def new_issuing_ca(
    engine: Engine,
    token: Token,
    ceremony: KeyCeremony,
    officer_id: str,
    now: dt.datetime,
    *,
    organization: str,
) -> None:
    """Make the new issuing CA of `ceremony` in `token`; it replaces the one it names."""
    with engine.connect() as connection:
        # Before a key is made: a CA changed since the proposal fails the ceremony now.
        rollover.check_replaceable(connection, ceremony.target_authority_id)
    with rollover.new_issuing_ca(engine, token, organization=organization, now=now) as pending:
        connection = pending.connection
        _claim(connection, ceremony, officer_id, now)
        made = pending.install(replacing=ceremony.target_authority_id)
        store.set_result(connection, ceremony.id, made.fingerprint)
        audit(
            connection,
            officer_id,
            AuditAction.KEY_GENERATED,
            ceremony.id,
            now,
            {
                "ceremony": ceremony.id,
                "role": AuthorityRole.ISSUING,
                "authority_id": made.authority_id,
                "key_label": made.key_label,
                "fingerprint": made.fingerprint,
                "replaces": made.replaced.id if made.replaced else None,
                "ocsp_responder_key_label": made.responder_key_label,
            },
            subject=(_CA_SUBJECT_KIND, made.key_label),
        )
        if made.replaced is not None:
            _audit_retired(connection, officer_id, ceremony.id, made.replaced, now)


def retire_issuing_ca(
    engine: Engine, ceremony: KeyCeremony, officer_id: str, now: dt.datetime
) -> None:
    """Retire the issuing CA that `ceremony` names."""
    if ceremony.target_authority_id is None:
        raise rollover.RolloverError("the ceremony names no issuing CA to retire")
    with engine.begin() as connection:
        _claim(connection, ceremony, officer_id, now)
        retired = rollover.retire_issuing_ca(connection, ceremony.target_authority_id)
        store.set_result(connection, ceremony.id, retired.sha256_fingerprint)
        _audit_retired(connection, officer_id, ceremony.id, retired, now)


def record_failure(
    engine: Engine, ceremony: KeyCeremony, officer_id: str, error: Exception, now: dt.datetime
) -> str:
    """Close `ceremony` as failed with `error`, audited; the error's text as recorded."""
    message = (" ".join(str(error).split()) or type(error).__name__)[:MAX_ERROR]
    action = (
        AuditAction.KEY_GENERATED
        if ceremony.kind is CeremonyKind.NEW_ISSUING_CA
        else AuditAction.KEY_RETIRED
    )
    with engine.begin() as connection:
        if store.close_ceremony(
            connection,
            ceremony.id,
            status=CeremonyStatus.FAILED,
            closed_by=officer_id,
            now=now,
            result=message,
            unexpired=False,
        ):
            audit(
                connection,
                officer_id,
                action,
                ceremony.id,
                now,
                {"ceremony": ceremony.id, "kind": ceremony.kind.value, "error": message},
                outcome=Outcome.FAILURE,
            )
    return message


def _claim(
    connection: Connection, ceremony: KeyCeremony, officer_id: str, now: dt.datetime
) -> None:
    """Take the open ceremony for execution, first in the transaction that executes it:
    a second executor waits on the row (PostgreSQL) or the write lock (SQLite), then
    finds it closed."""
    if not store.close_ceremony(
        connection,
        ceremony.id,
        status=CeremonyStatus.EXECUTED,
        closed_by=officer_id,
        now=now,
    ):
        raise closed(connection, ceremony.id, now)
    # Approvals are counted again under the claim: an approver may have been disabled.
    require_officer(connection, officer_id, Permission.MANAGE_CA)
    check_approved(load_ceremony(connection, ceremony.id, now))


def _audit_retired(
    connection: Connection,
    officer_id: str,
    ceremony_id: int,
    retired: AuthorityRow,
    now: dt.datetime,
) -> None:
    audit(
        connection,
        officer_id,
        AuditAction.KEY_RETIRED,
        ceremony_id,
        now,
        {
            "ceremony": ceremony_id,
            "role": retired.role,
            "authority_id": retired.id,
            "key_label": retired.key_label,
            "fingerprint": retired.sha256_fingerprint,
        },
        subject=(_CA_SUBJECT_KIND, retired.key_label),
    )
