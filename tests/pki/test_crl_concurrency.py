"""current_crl beside other writers, on SQLite and PostgreSQL: a CRL is built outside any write
transaction, yet no revocation goes missing from the CRL served and no CRL replaces a newer one.

"During a build" is the moment after the build read its first entry, when its read has begun:
the tests run their other writer there, through a wrapper around the entries' stream."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import Connection, Engine, event

from pwa_server.pki import crl as crl_module
from pwa_server.pki.authority import Authority
from pwa_server.pki.crl import current_crl
from pwa_server.pki.hierarchy import record_authority
from pwa_server.runtime import Services
from pwa_server.store.certificates import (
    RevokedCertificate,
    RevokedRow,
    revoke_certificate,
    stream_revoked_entries,
)
from pwa_server.store.database import create_database_engine, migrate
from pwa_server.vocabulary import AuthorityRole
from tests.store.test_repositories import add_certificate

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class Ca:
    """An issuing CA on its own database: certificate a1 revoked, a2 still valid."""

    url: str
    engine: Engine
    authority: Authority


@pytest.fixture
def ca(services: Services, database_url: str) -> Iterator[Ca]:
    engine = create_database_engine(database_url)
    migrate(engine)
    with engine.begin() as connection:
        authority_id = record_authority(
            connection,
            name="issuing-for-crl",
            role=AuthorityRole.ISSUING,
            parent_id=None,
            ref=services.issuing.key_ref,
            certificate=services.issuing.certificate,
            now=NOW,
        )
        for serial in ("a1", "a2"):
            add_certificate(connection, authority_id, serial)
        revoke_certificate(connection, authority_id, "a1", reason="superseded", now=NOW)
    yield Ca(database_url, engine, dataclasses.replace(services.issuing, id=authority_id))
    engine.dispose()


@pytest.fixture
def other_worker(ca: Ca) -> Iterator[Engine]:
    """The engine of another worker on the same database, whose statements give up after 0.1 s
    waiting for a lock: a build that held one until it ended would deadlock these one-thread
    tests otherwise, instead of failing them."""
    engine = create_database_engine(ca.url)
    event.listen(engine, "connect", _impatient)
    yield engine
    engine.dispose()


def _impatient(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor.execute("PRAGMA busy_timeout = 100")
    else:
        cursor.execute("SET lock_timeout = '100ms'")
        dbapi_connection.commit()  # a rollback would undo the SET
    cursor.close()


def revoke(engine: Engine, ca: Ca, serial: str) -> list[RevokedCertificate]:
    with engine.begin() as connection:
        return revoke_certificate(connection, ca.authority.id, serial, reason="superseded", now=NOW)


def during_the_next_build(monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]) -> None:
    """Run `action` once, in the middle of the next CRL build."""
    real = stream_revoked_entries  # the function crl.py imported

    def stream(
        connection: Connection, issuer_id: int, *, batch: int = 10_000
    ) -> Iterator[RevokedRow]:
        # Only once: a build that `action` starts reads as usual.
        monkeypatch.setattr(crl_module, "stream_revoked_entries", real)
        rows = real(connection, issuer_id, batch=batch)
        first = next(rows)
        action()
        yield first
        yield from rows

    monkeypatch.setattr(crl_module, "stream_revoked_entries", stream)


def test_a_revocation_commits_without_waiting_for_the_crl_being_built(
    ca: Ca, other_worker: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked: list[RevokedCertificate] = []
    during_the_next_build(monkeypatch, lambda: revoked.extend(revoke(other_worker, ca, "a2")))

    current_crl(ca.engine, ca.authority, now=NOW)

    assert [certificate.serial for certificate in revoked] == ["a2"]


def test_a_revocation_committed_while_a_crl_is_built_is_in_the_next_crl_served(
    ca: Ca, other_worker: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    during_the_next_build(monkeypatch, lambda: revoke(other_worker, ca, "a2"))
    current_crl(ca.engine, ca.authority, now=NOW)

    served = x509.load_der_x509_crl(current_crl(ca.engine, ca.authority, now=LATER))

    assert sorted(entry.serial_number for entry in served) == [0xA1, 0xA2]


def test_a_crl_built_while_another_worker_built_a_newer_one_does_not_replace_it(
    ca: Ca, other_worker: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer: list[bytes] = []
    during_the_next_build(
        monkeypatch, lambda: newer.append(current_crl(other_worker, ca.authority, now=NOW))
    )
    current_crl(ca.engine, ca.authority, now=NOW)

    assert current_crl(ca.engine, ca.authority, now=LATER) == newer[0]
