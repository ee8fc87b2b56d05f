"""Creating and loading the CA hierarchy: idempotent, never half-done, keys that match."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from hsm import KeyNotFoundError, KeyRef
from pwa_server.pki.authority import Authority, AuthorityError, fingerprint, load_authority
from pwa_server.pki.hierarchy import ensure_hierarchy, record_authority
from pwa_server.runtime import Services
from pwa_server.settings import Settings
from pwa_server.vocabulary import AuthorityRole

# SQLite triggers that make recording a CA fail the way a full disk or a lost server would.
REFUSE_EVERY_CA = """
CREATE TRIGGER refuse_ca BEFORE INSERT ON certificate_authorities
BEGIN SELECT RAISE(ABORT, 'recording refused for the test'); END
"""
REFUSE_ISSUING_CA = """
CREATE TRIGGER refuse_issuing_ca BEFORE INSERT ON certificate_authorities
WHEN NEW.role = 'issuing'
BEGIN SELECT RAISE(ABORT, 'recording refused for the test'); END
"""


def key_labels(services: Services) -> set[str]:
    return {info.label for info in services.token.key_objects()}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def record_ca(engine: Engine, role: AuthorityRole, authority: Authority, key: KeyRef) -> None:
    """Record `authority`'s certificate as the active `role` CA, with `key` as its token key."""
    with engine.begin() as connection:
        record_authority(
            connection,
            name=f"recorded-{role}",
            role=role,
            parent_id=None,
            ref=key,
            certificate=authority.certificate,
            now=now(),
        )


def test_ensure_hierarchy_on_an_initialised_database_creates_nothing_and_returns_the_same_cas(
    services: Services, initialised: Settings
) -> None:
    labels_before = key_labels(services)

    root, issuing, created = ensure_hierarchy(
        services.engine, services.token, organization=initialised.ca_organization, now=now()
    )

    assert created == []
    assert fingerprint(root.certificate) == fingerprint(services.root.certificate)
    assert fingerprint(issuing.certificate) == fingerprint(services.issuing.certificate)
    assert (root.key_ref, issuing.key_ref) == (services.root.key_ref, services.issuing.key_ref)
    assert key_labels(services) == labels_before


def test_key_of_a_ca_that_could_not_be_recorded_is_destroyed_and_the_error_propagates(
    services: Services, migrated_engine: Engine
) -> None:
    with migrated_engine.begin() as connection:
        connection.execute(text(REFUSE_EVERY_CA))
    labels_before = key_labels(services)

    with pytest.raises(DBAPIError, match="recording refused for the test"):
        ensure_hierarchy(migrated_engine, services.token, organization="Half Done", now=now())

    assert key_labels(services) == labels_before


def test_issuing_ca_that_could_not_be_recorded_leaves_only_the_recorded_root_behind(
    services: Services, migrated_engine: Engine
) -> None:
    with migrated_engine.begin() as connection:
        connection.execute(text(REFUSE_ISSUING_CA))
    labels_before = key_labels(services)

    with pytest.raises(DBAPIError, match="recording refused for the test"):
        ensure_hierarchy(migrated_engine, services.token, organization="Half Done", now=now())

    root = load_authority(migrated_engine, services.token, AuthorityRole.ROOT)
    try:
        assert key_labels(services) == labels_before | {root.key_ref.label}
    finally:
        services.token.destroy_key(root.key_ref)


def test_ensure_hierarchy_on_a_database_without_schema_fails_without_touching_the_token(
    services: Services, schemaless_engine: Engine
) -> None:
    labels_before = key_labels(services)

    with pytest.raises(OperationalError, match="no such table"):
        ensure_hierarchy(schemaless_engine, services.token, organization="No Schema", now=now())

    assert key_labels(services) == labels_before


def test_load_authority_returns_a_recorded_ca_whose_token_key_matches_its_certificate(
    services: Services, migrated_engine: Engine
) -> None:
    record_ca(migrated_engine, AuthorityRole.ROOT, services.root, services.root.key_ref)

    loaded = load_authority(migrated_engine, services.token, AuthorityRole.ROOT)

    assert loaded.certificate == services.root.certificate
    assert loaded.key_ref == services.root.key_ref
    assert loaded.private_key.public_key() == services.root.certificate.public_key()


def test_load_authority_refuses_a_ca_whose_token_key_does_not_match_its_certificate(
    services: Services, migrated_engine: Engine
) -> None:
    record_ca(migrated_engine, AuthorityRole.ROOT, services.root, services.issuing.key_ref)

    with pytest.raises(AuthorityError, match="does not belong to its certificate") as raised:
        load_authority(migrated_engine, services.token, AuthorityRole.ROOT)
    assert services.issuing.key_ref.label in str(raised.value)


def test_load_authority_without_an_active_ca_says_to_run_init(
    services: Services, migrated_engine: Engine
) -> None:
    with pytest.raises(AuthorityError, match=r"no active issuing CA.*shomei init"):
        load_authority(migrated_engine, services.token, AuthorityRole.ISSUING)


def test_load_authority_reports_a_token_key_that_is_missing(
    services: Services, migrated_engine: Engine
) -> None:
    ref = services.root.key_ref
    missing = KeyRef(ref.token_label, "deleted-root-key", ref.key_id, ref.algorithm)
    record_ca(migrated_engine, AuthorityRole.ROOT, services.root, missing)

    with pytest.raises(KeyNotFoundError, match="deleted-root-key"):
        load_authority(migrated_engine, services.token, AuthorityRole.ROOT)


@pytest.mark.parametrize("role", ["root", "issuing"])
def test_probe_succeeds_for_the_real_cas(services: Services, role: str) -> None:
    authority = services.root if role == "root" else services.issuing
    authority.probe()


def test_probe_raises_authority_error_when_the_key_does_not_match_the_certificate(
    services: Services,
) -> None:
    mismatched = Authority(
        services.root.id,
        "mismatched",
        AuthorityRole.ROOT,
        certificate=services.root.certificate,
        private_key=services.issuing.private_key,
    )
    with pytest.raises(AuthorityError, match="mismatched: the token key does not match"):
        mismatched.probe()
