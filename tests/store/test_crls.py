"""crl_state: CRL numbers claimed, CRLs kept only when nothing newer came, on SQLite and
PostgreSQL; and the index the CRL query reads the revoked certificates from."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import sqlite

from pwa_server.store.certificates import revoke_certificate, revoked_entries_query
from pwa_server.store.crls import (
    CrlClaim,
    CrlRow,
    claim_crl_number,
    current_crl_row,
    store_crl,
)
from pwa_server.store.database import create_database_engine, migrate
from tests.store.test_repositories import NOW, add_authority, add_certificate


@pytest.fixture
def authority_id(engine: Engine) -> int:
    """An issuing CA with one valid certificate, serial "a1"."""
    with engine.begin() as connection:
        created = add_authority(connection, "issuing", role="issuing")
        add_certificate(connection, created, "a1")
    return created


def claim(engine: Engine, authority_id: int) -> CrlClaim:
    with engine.begin() as connection:
        return claim_crl_number(connection, authority_id)


def store(engine: Engine, authority_id: int, claimed: CrlClaim) -> None:
    """Offer the CRL of `claimed`, its DER naming its number."""
    with engine.begin() as connection:
        store_crl(
            connection,
            authority_id,
            claimed,
            crl_der=f"CRL {claimed.number}".encode(),
            this_update=NOW,
            next_update=NOW + dt.timedelta(days=7),
        )


def revoke(engine: Engine, authority_id: int) -> None:
    with engine.begin() as connection:
        assert revoke_certificate(connection, authority_id, "a1", reason="superseded", now=NOW)


def row(engine: Engine, authority_id: int) -> CrlRow:
    with engine.connect() as connection:
        found = current_crl_row(connection, authority_id)
    assert found is not None
    return found


def test_a_crl_is_kept_as_fresh_when_no_revocation_came_since_its_claim(
    engine: Engine, authority_id: int
) -> None:
    claimed = claim(engine, authority_id)
    store(engine, authority_id, claimed)

    kept = row(engine, authority_id)
    assert (kept.crl_der, kept.stored_number, kept.stale) == (b"CRL 1", 1, False)


def test_a_crl_claimed_before_a_revocation_is_not_kept_and_the_crl_stays_stale(
    engine: Engine, authority_id: int
) -> None:
    claimed = claim(engine, authority_id)
    revoke(engine, authority_id)
    store(engine, authority_id, claimed)

    kept = row(engine, authority_id)
    assert (kept.crl_der, kept.stored_number, kept.stale) == (None, None, True)


def test_a_crl_never_replaces_a_newer_one_kept_before_it(engine: Engine, authority_id: int) -> None:
    older = claim(engine, authority_id)
    newer = claim(engine, authority_id)
    store(engine, authority_id, newer)
    store(engine, authority_id, older)

    kept = row(engine, authority_id)
    assert (kept.crl_der, kept.stored_number) == (b"CRL 2", 2)


def test_a_newer_crl_replaces_an_older_one_kept_before_it(
    engine: Engine, authority_id: int
) -> None:
    older = claim(engine, authority_id)
    newer = claim(engine, authority_id)
    store(engine, authority_id, older)
    store(engine, authority_id, newer)

    kept = row(engine, authority_id)
    assert (kept.crl_der, kept.stored_number) == (b"CRL 2", 2)


def test_each_claim_gets_a_greater_number_also_when_no_crl_is_kept(
    engine: Engine, authority_id: int
) -> None:
    first = claim(engine, authority_id)
    revoke(engine, authority_id)
    store(engine, authority_id, first)

    assert [first.number, claim(engine, authority_id).number] == [1, 2]


def test_the_first_crl_is_number_1_also_when_a_revocation_came_before_it(
    engine: Engine, authority_id: int
) -> None:
    revoke(engine, authority_id)

    assert claim(engine, authority_id).number == 1


def test_a_revocation_after_a_crl_was_kept_marks_it_stale(
    engine: Engine, authority_id: int
) -> None:
    store(engine, authority_id, claim(engine, authority_id))
    revoke(engine, authority_id)

    assert row(engine, authority_id).stale


def query_plan(connection: Connection, issuer_id: int) -> str:
    """SQLite's EXPLAIN QUERY PLAN of the CRL query, one step a line."""
    query = revoked_entries_query(issuer_id).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    steps = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").all()
    return "\n".join(str(step[-1]) for step in steps)


def test_sqlite_reads_a_cas_revoked_certificates_in_order_from_the_index_without_sorting(
    tmp_path: Path,
) -> None:
    opened = create_database_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        migrate(opened)
        with opened.connect() as connection:
            plan = query_plan(connection, 1)
    finally:
        opened.dispose()

    assert plan == (
        "SEARCH certificates USING INDEX ix_certificates_issuer_status_id"
        " (issuer_id=? AND status=?)"
    )
