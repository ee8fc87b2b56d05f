"""Rolling the issuing CA over: a new CA in the token certified by the root takes over, the
one before it retires but keeps answering for what it issued, nothing half-made remains.

Each test builds its own hierarchy in a fresh database (SQLite and PostgreSQL) on the session's
token, so that the session's own CAs are never replaced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from pwa_server.pki.authority import Authority, fingerprint, load_authority
from pwa_server.pki.crl import current_crl
from pwa_server.pki.hierarchy import ensure_hierarchy, ensure_ocsp_responder
from pwa_server.pki.issuance import issue
from pwa_server.pki.ocsp import OcspResponder, OcspResponders
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.pki.rollover import (
    RolloverError,
    active_issuing_fingerprint,
    load_issuing_generations,
    retire_issuing_ca,
    roll_over_issuing_ca,
)
from pwa_server.runtime import Services
from pwa_server.store.database import create_database_engine, migrate
from pwa_server.store.tables import certificate_authorities
from pwa_server.vocabulary import AuthorityRole
from tests.conftest import openssl

ORGANIZATION = "Rollover Test"

# Recording the new CA's OCSP responder fails, after the new issuing CA row was written: the
# whole change must go, and both keys with it.
REFUSE_RESPONDER = {
    "sqlite": [
        """CREATE TRIGGER refuse_responder BEFORE INSERT ON certificate_authorities
        WHEN NEW.role = 'ocsp'
        BEGIN SELECT RAISE(ABORT, 'recording refused for the test'); END"""
    ],
    "postgresql": [
        """CREATE FUNCTION refuse_responder() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'recording refused for the test'; END $$""",
        """CREATE TRIGGER refuse_responder BEFORE INSERT ON certificate_authorities
        FOR EACH ROW WHEN (NEW.role = 'ocsp') EXECUTE FUNCTION refuse_responder()""",
    ],
}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Hierarchy:
    engine: Engine
    root: Authority
    issuing: Authority


@pytest.fixture
def hierarchy(database_url: str, services: Services) -> Iterator[Hierarchy]:
    """A root and an issuing CA with its OCSP responder, in a database of their own."""
    engine = create_database_engine(database_url)
    migrate(engine)
    root, issuing, _ = ensure_hierarchy(
        engine, services.token, organization=ORGANIZATION, now=now()
    )
    ensure_ocsp_responder(
        engine, services.token, organization=ORGANIZATION, issuing=issuing, now=now()
    )
    yield Hierarchy(engine, root, issuing)
    engine.dispose()


def key_labels(services: Services) -> set[str]:
    return {info.label for info in services.token.key_objects()}


def statuses(engine: Engine) -> dict[int, tuple[str, str]]:
    table = certificate_authorities
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.id, table.c.role, table.c.status))
        return {row.id: (row.role, row.status) for row in rows}


def write_pem(directory: Path, name: str, certificate: x509.Certificate) -> Path:
    path = directory / f"{name}.pem"
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return path


def issue_client(engine: Engine, issuer: Authority, name: str) -> x509.Certificate:
    with engine.begin() as connection:
        certificate, _ = issue(
            connection,
            issuer,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            profile=CertificateProfile.CLIENT,
            now=now(),
            lifetime=dt.timedelta(days=30),
        )
    return certificate


def test_active_issuing_fingerprint_names_the_issuing_ca_in_use_and_follows_a_rollover(
    hierarchy: Hierarchy, services: Services
) -> None:
    assert active_issuing_fingerprint(hierarchy.engine) == fingerprint(
        hierarchy.issuing.certificate
    )

    made = roll_over_issuing_ca(
        hierarchy.engine,
        services.token,
        organization=ORGANIZATION,
        replacing=hierarchy.issuing.id,
        now=now(),
    )

    assert active_issuing_fingerprint(hierarchy.engine) == made.fingerprint
    assert made.fingerprint != fingerprint(hierarchy.issuing.certificate)


def test_active_issuing_fingerprint_is_none_before_init(
    migrated_engine: Engine,
) -> None:
    assert active_issuing_fingerprint(migrated_engine) is None


def test_new_issuing_ca_has_a_token_key_chains_to_the_root_and_issues_what_openssl_accepts(
    hierarchy: Hierarchy, services: Services, tmp_path: Path
) -> None:
    made = roll_over_issuing_ca(
        hierarchy.engine,
        services.token,
        organization=ORGANIZATION,
        replacing=hierarchy.issuing.id,
        now=now(),
    )
    new_ca = load_authority(hierarchy.engine, services.token, AuthorityRole.ISSUING)
    client = issue_client(hierarchy.engine, new_ca, "after-rollover")

    assert new_ca.id == made.authority_id
    assert new_ca.key_ref.label == made.key_label
    private = [
        info
        for info in services.token.key_objects()
        if info.label == made.key_label and info.object_class == "private"
    ]
    assert [(info.sensitive, info.extractable) for info in private] == [(True, False)]
    common_name = new_ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name[0].value == f"{ORGANIZATION} Issuing CA G2"
    root_pem = write_pem(tmp_path, "root", hierarchy.root.certificate)
    new_pem = write_pem(tmp_path, "new", new_ca.certificate)
    checked = openssl("verify", "-CAfile", root_pem, new_pem)
    assert checked.returncode == 0, checked.stderr
    checked = openssl(
        "verify", "-CAfile", root_pem, "-untrusted", new_pem, write_pem(tmp_path, "leaf", client)
    )
    assert checked.returncode == 0, checked.stderr
    responder = load_authority(hierarchy.engine, services.token, AuthorityRole.OCSP)
    assert responder.id == made.responder_id
    checked = openssl(
        "verify",
        "-CAfile",
        root_pem,
        "-untrusted",
        new_pem,
        write_pem(tmp_path, "responder", responder.certificate),
    )
    assert checked.returncode == 0, checked.stderr


def test_the_replaced_issuing_ca_is_retired_and_still_signs_crls_and_ocsp_for_what_it_issued(
    hierarchy: Hierarchy, services: Services, tmp_path: Path
) -> None:
    old_client = issue_client(hierarchy.engine, hierarchy.issuing, "before-rollover")

    made = roll_over_issuing_ca(
        hierarchy.engine,
        services.token,
        organization=ORGANIZATION,
        replacing=hierarchy.issuing.id,
        now=now(),
    )

    assert made.replaced is not None
    assert made.replaced.id == hierarchy.issuing.id
    assert statuses(hierarchy.engine)[hierarchy.issuing.id] == ("issuing", "retired")
    generations = load_issuing_generations(hierarchy.engine, services.token, now=now())
    assert [(g.issuing.id, g.active) for g in generations] == [
        (made.authority_id, True),
        (hierarchy.issuing.id, False),
    ]
    old = generations[1]
    assert old.responder is not None
    crl = tmp_path / "old.crl"
    crl.write_bytes(current_crl(hierarchy.engine, old.issuing, now=now()))
    checked = openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        crl,
        "-CAfile",
        write_pem(tmp_path, "old", hierarchy.issuing.certificate),
        "-noout",
    )
    assert checked.returncode == 0, checked.stderr
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(old_client, hierarchy.issuing.certificate, hashes.SHA256())
        .build()
    )
    answer = ocsp.load_der_ocsp_response(
        OcspResponders([OcspResponder(hierarchy.engine, old.issuing, old.responder)]).respond(
            request.public_bytes(Encoding.DER), now=now()
        )
    )
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_a_rollover_replacing_a_ca_that_is_no_longer_active_changes_nothing(
    hierarchy: Hierarchy, services: Services
) -> None:
    roll_over_issuing_ca(
        hierarchy.engine,
        services.token,
        organization=ORGANIZATION,
        replacing=hierarchy.issuing.id,
        now=now(),
    )
    labels_before, rows_before = key_labels(services), statuses(hierarchy.engine)

    with pytest.raises(RolloverError, match="not the one this change was to replace"):
        roll_over_issuing_ca(
            hierarchy.engine,
            services.token,
            organization=ORGANIZATION,
            replacing=hierarchy.issuing.id,
            now=now(),
        )

    assert key_labels(services) == labels_before
    assert statuses(hierarchy.engine) == rows_before


def test_a_rollover_that_cannot_be_recorded_leaves_no_ca_row_and_no_key(
    hierarchy: Hierarchy, services: Services
) -> None:
    with hierarchy.engine.begin() as connection:
        for statement in REFUSE_RESPONDER[hierarchy.engine.dialect.name]:
            connection.execute(text(statement))
    labels_before, rows_before = key_labels(services), statuses(hierarchy.engine)

    with pytest.raises(DBAPIError, match="recording refused for the test"):
        roll_over_issuing_ca(
            hierarchy.engine,
            services.token,
            organization=ORGANIZATION,
            replacing=hierarchy.issuing.id,
            now=now(),
        )

    assert key_labels(services) == labels_before
    assert statuses(hierarchy.engine) == rows_before
    assert active_issuing_fingerprint(hierarchy.engine) == fingerprint(
        hierarchy.issuing.certificate
    )


def test_an_issuing_ca_is_retired_only_while_another_stays_active(
    hierarchy: Hierarchy, services: Services
) -> None:
    made = roll_over_issuing_ca(
        hierarchy.engine,
        services.token,
        organization=ORGANIZATION,
        replacing=hierarchy.issuing.id,
        now=now(),
    )
    # Two active issuing CAs: the retired one brought back, as after a restore.
    table = certificate_authorities
    with hierarchy.engine.begin() as connection:
        connection.execute(
            table.update().where(table.c.id == hierarchy.issuing.id).values(status="active")
        )

    with hierarchy.engine.begin() as connection:
        retired = retire_issuing_ca(connection, made.authority_id)

    assert retired.id == made.authority_id
    assert statuses(hierarchy.engine)[made.authority_id] == ("issuing", "retired")
    # The newest active one left takes over issuance.
    assert active_issuing_fingerprint(hierarchy.engine) == fingerprint(
        hierarchy.issuing.certificate
    )
    with (
        pytest.raises(RolloverError, match="the only active one"),
        hierarchy.engine.begin() as connection,
    ):
        retire_issuing_ca(connection, hierarchy.issuing.id)
    assert statuses(hierarchy.engine)[hierarchy.issuing.id] == ("issuing", "active")


def test_the_retired_cas_responder_is_renewed_when_it_nears_its_end(
    hierarchy: Hierarchy, services: Services
) -> None:
    roll_over_issuing_ca(
        hierarchy.engine,
        services.token,
        organization=ORGANIZATION,
        replacing=hierarchy.issuing.id,
        now=now(),
    )
    [_, old] = load_issuing_generations(hierarchy.engine, services.token, now=now())
    assert old.responder is not None
    near_its_end = old.responder.certificate.not_valid_after_utc - dt.timedelta(days=10)

    renewed = ensure_ocsp_responder(
        hierarchy.engine,
        services.token,
        organization=ORGANIZATION,
        issuing=old.issuing,
        now=near_its_end,
    )

    assert renewed
    [_, later] = load_issuing_generations(hierarchy.engine, services.token, now=near_its_end)
    assert later.responder is not None
    assert later.responder.id != old.responder.id
    later.responder.certificate.verify_directly_issued_by(hierarchy.issuing.certificate)
