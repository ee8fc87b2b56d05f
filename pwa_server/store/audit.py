"""Rows of the audit log: events, the head every append locks, the seal keys and the seals.

Hashing and signing are pwa_server.audit's; this module only reads and writes rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, select, update

from pwa_server.store.tables import audit_events, audit_head, audit_keys, audit_seals

# The single row of audit_head.
_HEAD_ID = 1


@dataclass(frozen=True)
class AuditEventRow:
    """One audit event as stored; `details` is the JSON text exactly as it was hashed."""

    id: int
    occurred_at: dt.datetime
    actor_kind: str
    actor: str
    action: str
    subject_kind: str | None
    subject: str | None
    outcome: str
    details: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditHeadRow:
    """The newest event's id and hash, as the head row records them."""

    last_event_id: int
    last_hash: str


@dataclass(frozen=True)
class AuditKeyRow:
    """A seal key: where it lives in the token, and its public key for verification."""

    id: int
    key_token_label: str
    key_label: str
    key_id: str
    key_algorithm: str
    public_key_der: bytes
    status: str
    created_at: dt.datetime


@dataclass(frozen=True)
class AuditSealRow:
    """A signature over the head (event id and hash) at one moment."""

    id: int
    event_id: int
    event_hash: str
    signed_at: dt.datetime
    signature: bytes
    audit_key_id: int


def claim_next_event(connection: Connection) -> tuple[int, str] | None:
    """Lock the head and move it on by one: (the new event's id, the previous event's hash).

    The UPDATE comes first on purpose: on PostgreSQL it takes the row lock (and READ
    COMMITTED re-reads the row once the lock is granted), on SQLite it opens the write
    transaction, so the read below can never see a head another writer is moving. The lock
    is held until the caller's transaction ends. None when the head row is missing.
    """
    row = connection.execute(
        update(audit_head)
        .where(audit_head.c.id == _HEAD_ID)
        .values(last_event_id=audit_head.c.last_event_id + 1)
        .returning(audit_head.c.last_event_id, audit_head.c.last_hash)
    ).one_or_none()
    return (int(row.last_event_id), str(row.last_hash)) if row is not None else None


def insert_event(connection: Connection, event: AuditEventRow) -> None:
    """Store an event whose id the caller claimed with claim_next_event."""
    connection.execute(
        insert(audit_events).values(
            id=event.id,
            occurred_at=event.occurred_at,
            actor_kind=event.actor_kind,
            actor=event.actor,
            action=event.action,
            subject_kind=event.subject_kind,
            subject=event.subject,
            outcome=event.outcome,
            details=event.details,
            prev_hash=event.prev_hash,
            hash=event.hash,
        )
    )


def set_head_hash(connection: Connection, last_hash: str) -> None:
    """Record the hash of the event just appended (the head's id was moved by the claim)."""
    connection.execute(
        update(audit_head).where(audit_head.c.id == _HEAD_ID).values(last_hash=last_hash)
    )


def read_head(connection: Connection) -> AuditHeadRow | None:
    """The head row, or None when it is missing (which only tampering causes)."""
    row = connection.execute(
        select(audit_head.c.last_event_id, audit_head.c.last_hash).where(
            audit_head.c.id == _HEAD_ID
        )
    ).one_or_none()
    return AuditHeadRow(**row._mapping) if row is not None else None


def events_after(connection: Connection, after_id: int, limit: int) -> list[AuditEventRow]:
    """Up to `limit` events with ids above `after_id`, oldest first (to walk the chain)."""
    rows = connection.execute(
        select(audit_events)
        .where(audit_events.c.id > after_id)
        .order_by(audit_events.c.id)
        .limit(limit)
    )
    return [AuditEventRow(**row._mapping) for row in rows]


def find_events(
    connection: Connection,
    *,
    limit: int,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    before_id: int | None = None,
) -> list[AuditEventRow]:
    """The newest events matching every given filter, newest first."""
    query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    if actor is not None:
        query = query.where(audit_events.c.actor == actor)
    if subject is not None:
        query = query.where(audit_events.c.subject == subject)
    if before_id is not None:
        query = query.where(audit_events.c.id < before_id)
    return [AuditEventRow(**row._mapping) for row in connection.execute(query)]


def insert_audit_key(
    connection: Connection,
    *,
    key_token_label: str,
    key_label: str,
    key_id: str,
    key_algorithm: str,
    public_key_der: bytes,
    created_at: dt.datetime,
) -> int:
    """Record a new active seal key and return its id."""
    result = connection.execute(
        insert(audit_keys).values(
            key_token_label=key_token_label,
            key_label=key_label,
            key_id=key_id,
            key_algorithm=key_algorithm,
            public_key_der=public_key_der,
            status="active",
            created_at=created_at,
        )
    )
    inserted = result.inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database returned no id for the new audit key")
    return int(inserted[0])


def active_audit_key(connection: Connection) -> AuditKeyRow | None:
    """The newest active seal key, or None before `shomei init` made one."""
    row = connection.execute(
        select(audit_keys)
        .where(audit_keys.c.status == "active")
        .order_by(audit_keys.c.id.desc())
        .limit(1)
    ).one_or_none()
    return _key(row) if row is not None else None


def all_audit_keys(connection: Connection) -> dict[int, AuditKeyRow]:
    """Every seal key ever made, active or retired, by id."""
    return {key.id: key for key in map(_key, connection.execute(select(audit_keys)))}


def _key(row: object) -> AuditKeyRow:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["public_key_der"] = bytes(values["public_key_der"])
    return AuditKeyRow(**values)


def insert_seal(
    connection: Connection,
    *,
    event_id: int,
    event_hash: str,
    signed_at: dt.datetime,
    signature: bytes,
    audit_key_id: int,
) -> int:
    """Record a seal and return its id."""
    result = connection.execute(
        insert(audit_seals).values(
            event_id=event_id,
            event_hash=event_hash,
            signed_at=signed_at,
            signature=signature,
            audit_key_id=audit_key_id,
        )
    )
    inserted = result.inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database returned no id for the new audit seal")
    return int(inserted[0])


def latest_seal(connection: Connection) -> AuditSealRow | None:
    """The seal made last, or None before the first one."""
    row = connection.execute(
        select(audit_seals).order_by(audit_seals.c.id.desc()).limit(1)
    ).one_or_none()
    return _seal(row) if row is not None else None


def all_seals(connection: Connection) -> list[AuditSealRow]:
    """Every seal, oldest first."""
    return [
        _seal(row) for row in connection.execute(select(audit_seals).order_by(audit_seals.c.id))
    ]


def _seal(row: object) -> AuditSealRow:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["signature"] = bytes(values["signature"])
    return AuditSealRow(**values)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see the database at one moment, so that a walk over the
    whole log is not confused by events committed while it runs. Nothing is written."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with connection.begin() as transaction:
                yield connection
                transaction.rollback()
            return
        # pysqlite runs each SELECT outside a transaction; an explicit BEGIN makes the reads
        # share one WAL snapshot until the rollback.
        connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.rollback()
