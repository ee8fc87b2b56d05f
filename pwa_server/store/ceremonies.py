"""Rows of key ceremonies and their approvals (the CA rows they change: store/authorities.py).

A ceremony leaves "open" by one conditional UPDATE, so that two officers executing it at once
run it once; an officer approves a ceremony once (the primary key of ceremony_approvals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from pwa_server.store.inserts import inserted
from pwa_server.store.tables import (
    ceremony_approvals,
    key_ceremonies,
    officers,
)
from pwa_server.vocabulary import AccountStatus, CeremonyKind, CeremonyStatus


@dataclass(frozen=True)
class CeremonyRow:
    """A key ceremony as stored."""

    id: int
    kind: CeremonyKind
    target_authority_id: int | None
    proposed_by: str
    proposed_at: dt.datetime
    expires_at: dt.datetime
    required_approvals: int
    status: CeremonyStatus
    closed_by: str | None
    closed_at: dt.datetime | None
    result: str | None


@dataclass(frozen=True)
class ApprovalRow:
    """An approval, with the approver's role and status now (a disabled officer's approval
    no longer counts)."""

    ceremony_id: int
    officer_id: str
    approved_at: dt.datetime
    officer_role: str
    officer_status: AccountStatus


# Ceremonies


def insert_ceremony(
    connection: Connection,
    *,
    kind: CeremonyKind,
    target_authority_id: int | None,
    proposed_by: str,
    proposed_at: dt.datetime,
    expires_at: dt.datetime,
    required_approvals: int,
) -> int:
    """Record a new open ceremony and return its id."""
    result = connection.execute(
        insert(key_ceremonies).values(
            kind=kind,
            target_authority_id=target_authority_id,
            proposed_by=proposed_by,
            proposed_at=proposed_at,
            expires_at=expires_at,
            required_approvals=required_approvals,
            status=CeremonyStatus.OPEN,
        )
    )
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for the new key ceremony")
    return int(key[0])


def ceremony_by_id(connection: Connection, ceremony_id: int) -> CeremonyRow | None:
    row = connection.execute(
        select(key_ceremonies).where(key_ceremonies.c.id == ceremony_id)
    ).one_or_none()
    return CeremonyRow(**row._mapping) if row is not None else None


def recent_ceremonies(connection: Connection, *, limit: int) -> list[CeremonyRow]:
    """The newest ceremonies first."""
    rows = connection.execute(
        select(key_ceremonies).order_by(key_ceremonies.c.id.desc()).limit(limit)
    )
    return [CeremonyRow(**row._mapping) for row in rows]


def close_ceremony(
    connection: Connection,
    ceremony_id: int,
    *,
    status: CeremonyStatus,
    closed_by: str,
    now: dt.datetime,
    result: str | None = None,
    unexpired: bool = True,
) -> bool:
    """Move an open ceremony to `status`; False when it is no longer open (or, with
    `unexpired`, when its time is over).

    PostgreSQL locks the row, so a second officer doing the same waits and then finds it
    closed: this is what makes a ceremony run once.
    """
    table = key_ceremonies
    conditions = [table.c.id == ceremony_id, table.c.status == CeremonyStatus.OPEN]
    if unexpired:
        conditions.append(table.c.expires_at > now)
    outcome = connection.execute(
        update(table)
        .where(*conditions)
        .values(status=status, closed_by=closed_by, closed_at=now, result=result)
    )
    return outcome.rowcount == 1


def set_result(connection: Connection, ceremony_id: int, result: str) -> None:
    """Note what an executed ceremony made or retired."""
    connection.execute(
        update(key_ceremonies).where(key_ceremonies.c.id == ceremony_id).values(result=result)
    )


def expire_due_ceremonies(connection: Connection, *, now: dt.datetime) -> int:
    """Close the open ceremonies whose time is over, as of their expiry; how many."""
    table = key_ceremonies
    outcome = connection.execute(
        update(table)
        .where(table.c.status == CeremonyStatus.OPEN, table.c.expires_at <= now)
        .values(status=CeremonyStatus.EXPIRED, closed_at=table.c.expires_at)
    )
    return outcome.rowcount


# Approvals


def insert_approval(
    connection: Connection, *, ceremony_id: int, officer_id: str, now: dt.datetime
) -> bool:
    """Record an officer's approval; False when they approved this ceremony already."""
    return inserted(
        connection,
        insert(ceremony_approvals).values(
            ceremony_id=ceremony_id, officer_id=officer_id, approved_at=now
        ),
    )


def approvals_of(connection: Connection, ceremony_ids: Collection[int]) -> list[ApprovalRow]:
    """The approvals of these ceremonies, the earliest first, with each approver as they are."""
    if not ceremony_ids:
        return []
    rows = connection.execute(
        select(
            ceremony_approvals.c.ceremony_id,
            ceremony_approvals.c.officer_id,
            ceremony_approvals.c.approved_at,
            officers.c.role.label("officer_role"),
            officers.c.status.label("officer_status"),
        )
        .join(officers, officers.c.id == ceremony_approvals.c.officer_id)
        .where(ceremony_approvals.c.ceremony_id.in_(list(ceremony_ids)))
        .order_by(ceremony_approvals.c.approved_at, ceremony_approvals.c.officer_id)
    )
    return [ApprovalRow(**row._mapping) for row in rows]


def count_active_officers(connection: Connection, roles: Collection[str]) -> int:
    """How many active officers hold one of `roles`."""
    count = connection.execute(
        select(func.count())
        .select_from(officers)
        .where(officers.c.status == AccountStatus.ACTIVE, officers.c.role.in_(list(roles)))
    ).scalar_one()
    return int(count)
