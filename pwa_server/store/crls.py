"""Rows of crl_state: the CRL every worker serves, and the number the next one gets.

A CRL of a million entries takes seconds to build, too long to hold a write transaction (on
SQLite it would lock every other writer out), so a CRL is made in three steps:
claim_crl_number in a short transaction, then the entries read by one statement (one snapshot)
and encoded, then store_crl in another short transaction. A revocation committed between the
claim and the store bumps the CA's generation, and store_crl then leaves the CRL stale, so that
the next request builds one that lists it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pwa_server.store.tables import crl_state


@dataclass(frozen=True)
class CrlRow:
    """The stored CRL of one CA."""

    authority_id: int
    crl_number: int
    crl_der: bytes | None
    this_update: dt.datetime | None
    next_update: dt.datetime | None
    stale: bool
    generation: int
    stored_number: int | None


@dataclass(frozen=True)
class CrlClaim:
    """A CRL number handed out, and the CA's revocation generation when it was."""

    number: int
    generation: int


def current_crl_row(connection: Connection, authority_id: int) -> CrlRow | None:
    """The CA's row, with the CRL kept last (None before its first CRL or revocation)."""
    row = connection.execute(
        select(crl_state).where(crl_state.c.authority_id == authority_id)
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    if values["crl_der"] is not None:
        values["crl_der"] = bytes(values["crl_der"])
    return CrlRow(**values)


def claim_crl_number(connection: Connection, authority_id: int) -> CrlClaim:
    """The next CRL number of the CA (1 for its first CRL), never handed out twice, and the
    generation of the revocations it must list. Commit the claim before reading the entries:
    every revocation counted in that generation was committed before, so the read sees it."""
    table = crl_state
    bumped = connection.execute(
        update(table)
        .where(table.c.authority_id == authority_id)
        .values(crl_number=table.c.crl_number + 1)
    )
    if bumped.rowcount == 0:
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(table).values(
                        authority_id=authority_id, crl_number=1, stale=True, generation=0
                    )
                )
        except IntegrityError:
            # Another worker made the first row meanwhile: take the next number after its.
            return claim_crl_number(connection, authority_id)
    # Read under the row lock that the update took: no revocation can change it before commit.
    claimed = connection.execute(
        select(table.c.crl_number, table.c.generation).where(table.c.authority_id == authority_id)
    ).one()
    return CrlClaim(number=claimed[0], generation=claimed[1])


def store_crl(
    connection: Connection,
    authority_id: int,
    claim: CrlClaim,
    *,
    crl_der: bytes,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> None:
    """Keep the CRL of `claim` as fresh, unless a revocation was committed since the claim (the
    CRL may miss it: the CA's CRL stays stale) or a CRL of a newer claim is kept already."""
    table = crl_state
    connection.execute(
        update(table)
        .where(
            table.c.authority_id == authority_id,
            table.c.generation == claim.generation,
            or_(table.c.stored_number.is_(None), table.c.stored_number < claim.number),
        )
        .values(
            crl_der=crl_der,
            stored_number=claim.number,
            this_update=this_update,
            next_update=next_update,
            stale=False,
        )
    )


def mark_crl_stale(connection: Connection, authority_id: int) -> None:
    """A revocation happened: the next request for the CRL makes a new one, and a CRL claimed
    before it is not kept (store_crl compares the generation)."""
    table = crl_state
    bumped = connection.execute(
        update(table)
        .where(table.c.authority_id == authority_id)
        .values(stale=True, generation=table.c.generation + 1)
    )
    if bumped.rowcount:
        return
    # No row yet, or one inserted by a claim not yet committed (PostgreSQL's update does not
    # see it): insert, so that such a claim either waits for this revocation or is counted
    # out by it. Number 0 is never a CRL's: the first claim still gets 1.
    try:
        with connection.begin_nested():
            connection.execute(
                insert(table).values(
                    authority_id=authority_id, crl_number=0, stale=True, generation=1
                )
            )
    except IntegrityError:
        mark_crl_stale(connection, authority_id)
