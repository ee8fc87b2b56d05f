"""Rows of crl_state: the CRL every worker serves, and the number the next one gets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
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


def current_crl_row(connection: Connection, authority_id: int) -> CrlRow | None:
    row = connection.execute(
        select(crl_state).where(crl_state.c.authority_id == authority_id)
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    if values["crl_der"] is not None:
        values["crl_der"] = bytes(values["crl_der"])
    return CrlRow(**values)


def claim_crl_number(connection: Connection, authority_id: int) -> int:
    """The next CRL number of the CA (1 for its first CRL); never handed out twice."""
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
                    insert(table).values(authority_id=authority_id, crl_number=1, stale=True)
                )
        except IntegrityError:
            # Another worker made the first row meanwhile: take the next number after its.
            return claim_crl_number(connection, authority_id)
    number: int = connection.execute(
        select(table.c.crl_number).where(table.c.authority_id == authority_id)
    ).scalar_one()
    return number


def store_crl(
    connection: Connection,
    authority_id: int,
    *,
    crl_number: int,
    crl_der: bytes,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> None:
    """Keep the CRL, unless a newer number was claimed meanwhile (that CRL will be kept)."""
    connection.execute(
        update(crl_state)
        .where(crl_state.c.authority_id == authority_id, crl_state.c.crl_number == crl_number)
        .values(crl_der=crl_der, this_update=this_update, next_update=next_update, stale=False)
    )


def mark_crl_stale(connection: Connection, authority_id: int) -> None:
    """A revocation happened: the next request for the CRL makes a new one."""
    connection.execute(
        update(crl_state).where(crl_state.c.authority_id == authority_id).values(stale=True)
    )
