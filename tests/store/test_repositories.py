"""Rows of CAs and of the certificates they issued, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError, StatementError

from pwa_server.store.authorities import (
    AuthorityRow,
    active_authority,
    insert_authority,
    issued_count,
)
from pwa_server.store.certificates import certificate_by_serial, insert_certificate
from pwa_server.store.tables import certificate_authorities, certificates
from pwa_server.vocabulary import AuthorityRole, AuthorityStatus

NOW = dt.datetime(2025, 4, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
JST = dt.timezone(dt.timedelta(hours=9), "JST")


def fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def add_authority(connection: Connection, name: str, **overrides: Any) -> int:
    """Record a CA called `name`, with plausible values for whatever is not given."""
    der = f"certificate of {name}".encode()
    values: dict[str, Any] = {
        "name": name,
        "role": "root",
        "parent_id": None,
        "key_token_label": "shomei",
        "key_label": f"key-{name}",
        "key_id": fingerprint(name.encode())[:32],
        "key_algorithm": "ec-p384",
        "certificate_der": der,
        "sha256_fingerprint": fingerprint(der),
        "subject": f"O=Shomei,CN={name}",
        "not_before": NOW,
        "not_after": NOW + dt.timedelta(days=365),
        "created_at": NOW,
    }
    values.update(overrides)
    return insert_authority(connection, **values)


def add_certificate(connection: Connection, issuer_id: int, serial: str, **overrides: Any) -> int:
    """Record a certificate `serial` of the CA, with plausible values for the rest."""
    der = f"certificate {serial} of {issuer_id}".encode()
    values: dict[str, Any] = {
        "issuer_id": issuer_id,
        "serial": serial,
        "profile": "client",
        "subject": f"CN=user {serial}",
        "not_before": NOW,
        "not_after": NOW + dt.timedelta(days=730),
        "certificate_der": der,
        "sha256_fingerprint": fingerprint(der),
        "created_at": NOW,
    }
    values.update(overrides)
    return insert_certificate(connection, **values)


def test_active_authority_is_none_before_any_ca_exists(engine: Engine) -> None:
    with engine.connect() as connection:
        assert active_authority(connection, AuthorityRole.ROOT) is None


def test_active_authority_returns_the_inserted_ca(engine: Engine) -> None:
    der = b"\x30\x82\x01\x00 root certificate with \x00 bytes"
    with engine.begin() as connection:
        root_id = insert_authority(
            connection,
            name="shomei-root-1",
            role=AuthorityRole.ROOT,
            parent_id=None,
            key_token_label="shomei",
            key_label="shomei-root-20250401-abcdef",
            key_id="00112233445566778899aabbccddeeff",
            key_algorithm="ec-p384",
            certificate_der=der,
            sha256_fingerprint=fingerprint(der),
            subject="O=Shomei,CN=Shomei Root CA",
            not_before=NOW,
            not_after=NOW + dt.timedelta(days=7305),
            created_at=NOW,
        )

    with engine.connect() as connection:
        found = active_authority(connection, AuthorityRole.ROOT)

    assert found == AuthorityRow(
        id=root_id,
        name="shomei-root-1",
        role=AuthorityRole.ROOT,
        parent_id=None,
        key_token_label="shomei",
        key_label="shomei-root-20250401-abcdef",
        key_id="00112233445566778899aabbccddeeff",
        key_algorithm="ec-p384",
        certificate_der=der,
        sha256_fingerprint=fingerprint(der),
        status=AuthorityStatus.ACTIVE,
    )


def test_active_authority_returns_certificate_der_as_bytes(engine: Engine) -> None:
    with engine.begin() as connection:
        add_authority(connection, "root")

    with engine.connect() as connection:
        found = active_authority(connection, AuthorityRole.ROOT)

    assert found is not None
    assert type(found.certificate_der) is bytes


def test_active_authority_records_the_parent_of_an_issuing_ca(engine: Engine) -> None:
    with engine.begin() as connection:
        root_id = add_authority(connection, "root")
        issuing_id = add_authority(
            connection, "issuing", role=AuthorityRole.ISSUING, parent_id=root_id
        )

    with engine.connect() as connection:
        issuing = active_authority(connection, AuthorityRole.ISSUING)

    assert issuing is not None
    assert (issuing.id, issuing.parent_id) == (issuing_id, root_id)


def test_active_authority_only_returns_a_ca_of_the_requested_role(engine: Engine) -> None:
    with engine.begin() as connection:
        add_authority(connection, "root")

    with engine.connect() as connection:
        assert active_authority(connection, AuthorityRole.ISSUING) is None


def test_active_authority_returns_the_newest_active_ca_of_the_role(engine: Engine) -> None:
    with engine.begin() as connection:
        add_authority(connection, "root-old")
        newest = add_authority(connection, "root-new")

    with engine.connect() as connection:
        found = active_authority(connection, AuthorityRole.ROOT)

    assert found is not None
    assert (found.id, found.name) == (newest, "root-new")


def test_active_authority_ignores_a_retired_ca(engine: Engine) -> None:
    with engine.begin() as connection:
        active = add_authority(connection, "root-active")
        retired = add_authority(connection, "root-retired")
        connection.execute(
            update(certificate_authorities)
            .where(certificate_authorities.c.id == retired)
            .values(status="retired")
        )

    with engine.connect() as connection:
        found = active_authority(connection, AuthorityRole.ROOT)

    assert found is not None
    assert found.id == active


def test_issued_count_is_zero_for_a_new_ca(engine: Engine) -> None:
    with engine.begin() as connection:
        root = add_authority(connection, "root")

    with engine.connect() as connection:
        assert issued_count(connection, root) == 0


def test_issued_count_counts_only_the_certificates_of_that_ca(engine: Engine) -> None:
    with engine.begin() as connection:
        first = add_authority(connection, "first")
        second = add_authority(connection, "second")
        add_certificate(connection, first, "01")
        add_certificate(connection, first, "02")
        add_certificate(connection, second, "01")

    with engine.connect() as connection:
        assert (issued_count(connection, first), issued_count(connection, second)) == (2, 1)


def test_certificate_by_serial_returns_the_stored_der(engine: Engine) -> None:
    der = b"\x30\x82\x02\x00 client certificate with \x00 and \xff bytes"
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        insert_certificate(
            connection,
            issuer_id=issuer,
            serial="7f3a0c",
            profile="client",
            subject="CN=Alice",
            not_before=NOW,
            not_after=NOW + dt.timedelta(days=730),
            certificate_der=der,
            sha256_fingerprint=fingerprint(der),
            created_at=NOW,
        )

    with engine.connect() as connection:
        found = certificate_by_serial(connection, issuer, "7f3a0c")

    assert found == der
    assert type(found) is bytes


def test_insert_certificate_records_it_as_valid_and_not_revoked(engine: Engine) -> None:
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        certificate_id = add_certificate(connection, issuer, "01")

    with engine.connect() as connection:
        row = connection.execute(
            select(
                certificates.c.status,
                certificates.c.revoked_at,
                certificates.c.revocation_reason,
            ).where(certificates.c.id == certificate_id)
        ).one()

    assert tuple(row) == ("valid", None, None)


def test_certificate_by_serial_is_none_for_a_serial_never_issued(engine: Engine) -> None:
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        add_certificate(connection, issuer, "01")

    with engine.connect() as connection:
        assert certificate_by_serial(connection, issuer, "02") is None


def test_certificate_by_serial_is_none_for_a_serial_of_another_ca(engine: Engine) -> None:
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        other = add_authority(connection, "other")
        add_certificate(connection, other, "01")

    with engine.connect() as connection:
        assert certificate_by_serial(connection, issuer, "01") is None


def test_two_cas_may_use_the_same_serial(engine: Engine) -> None:
    with engine.begin() as connection:
        first = add_authority(connection, "first")
        second = add_authority(connection, "second")
        add_certificate(connection, first, "01", certificate_der=b"of first")
        add_certificate(connection, second, "01", certificate_der=b"of second")

    with engine.connect() as connection:
        assert certificate_by_serial(connection, first, "01") == b"of first"
        assert certificate_by_serial(connection, second, "01") == b"of second"


def test_a_ca_cannot_record_the_same_serial_twice(engine: Engine) -> None:
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        add_certificate(connection, issuer, "01")

    with pytest.raises(IntegrityError), engine.begin() as connection:
        add_certificate(connection, issuer, "01", sha256_fingerprint=fingerprint(b"other"))


def test_two_certificates_cannot_share_a_fingerprint(engine: Engine) -> None:
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        add_certificate(connection, issuer, "01", sha256_fingerprint="f" * 64)

    with pytest.raises(IntegrityError), engine.begin() as connection:
        add_certificate(connection, issuer, "02", sha256_fingerprint="f" * 64)


def test_two_cas_cannot_share_a_fingerprint(engine: Engine) -> None:
    with engine.begin() as connection:
        add_authority(connection, "first", sha256_fingerprint="e" * 64)

    with pytest.raises(IntegrityError), engine.begin() as connection:
        add_authority(connection, "second", sha256_fingerprint="e" * 64)


def test_two_cas_cannot_share_a_name(engine: Engine) -> None:
    with engine.begin() as connection:
        add_authority(connection, "root", sha256_fingerprint="1" * 64)

    with pytest.raises(IntegrityError), engine.begin() as connection:
        add_authority(connection, "root", sha256_fingerprint="2" * 64)


def test_a_rejected_insert_rolls_back_its_whole_transaction(engine: Engine) -> None:
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        add_certificate(connection, issuer, "01")

    def record_new_and_duplicate() -> None:
        with engine.begin() as connection:
            add_certificate(connection, issuer, "02")
            add_certificate(connection, issuer, "01", sha256_fingerprint=fingerprint(b"other"))

    with pytest.raises(IntegrityError):
        record_new_and_duplicate()

    with engine.connect() as connection:
        assert issued_count(connection, issuer) == 1


def test_a_certificate_of_an_unknown_ca_is_refused(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        add_certificate(connection, 999_999, "01")


def test_a_ca_with_an_unknown_parent_is_refused(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        add_authority(connection, "issuing", role=AuthorityRole.ISSUING, parent_id=999_999)


def test_datetimes_come_back_as_the_same_instant_in_utc(engine: Engine) -> None:
    in_tokyo = dt.datetime(2025, 4, 1, 21, 30, 15, 123456, tzinfo=JST)
    with engine.begin() as connection:
        root = add_authority(connection, "root", not_before=in_tokyo)

    with engine.connect() as connection:
        stored: dt.datetime = connection.execute(
            select(certificate_authorities.c.not_before).where(certificate_authorities.c.id == root)
        ).scalar_one()

    assert stored == in_tokyo
    assert stored.tzinfo == dt.UTC
    assert stored == dt.datetime(2025, 4, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)


def test_utc_datetimes_of_certificates_round_trip_unchanged(engine: Engine) -> None:
    not_after = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    with engine.begin() as connection:
        issuer = add_authority(connection, "issuing")
        certificate_id = add_certificate(connection, issuer, "01", not_after=not_after)

    with engine.connect() as connection:
        row = connection.execute(
            select(certificates.c.not_before, certificates.c.not_after).where(
                certificates.c.id == certificate_id
            )
        ).one()

    assert (row.not_before, row.not_after) == (NOW, not_after)
    assert {row.not_before.utcoffset(), row.not_after.utcoffset()} == {dt.timedelta(0)}


def test_a_naive_datetime_is_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as connection:
        add_authority(connection, "root", not_before=dt.datetime(2025, 4, 1, 12, 0))


def test_a_refused_naive_datetime_rolls_back_its_whole_transaction(engine: Engine) -> None:
    def record_ca_and_naive_certificate() -> None:
        with engine.begin() as connection:
            issuer = add_authority(connection, "issuing")
            add_certificate(connection, issuer, "01", created_at=dt.datetime(2025, 4, 1))

    with pytest.raises(StatementError):
        record_ca_and_naive_certificate()

    with engine.connect() as connection:
        assert active_authority(connection, AuthorityRole.ROOT) is None
