"""End-entity certificates issued once by the session's issuing CA, and empty databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile, PublicKey
from pwa_server.runtime import Services
from pwa_server.store.database import create_database_engine, migrate

CLIENT_LIFETIME = dt.timedelta(days=365)


@dataclass(frozen=True)
class Issued:
    """A certificate issued through the pipeline, the moment it was issued and its PEM file."""

    certificate: x509.Certificate
    now: dt.datetime
    pem: Path


def issue_client(services: Services, public_key: PublicKey, directory: Path, name: str) -> Issued:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with services.engine.begin() as connection:
        certificate, _ = issue(
            connection,
            services.issuing,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            public_key=public_key,
            profile=CertificateProfile.CLIENT,
            now=now,
            lifetime=CLIENT_LIFETIME,
        )
    pem = directory / f"{name}.pem"
    pem.write_bytes(certificate.public_bytes(Encoding.PEM))
    return Issued(certificate, now, pem)


@pytest.fixture(scope="package")
def ec_client(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Issued:
    """A client certificate for a fresh EC P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    return issue_client(services, key.public_key(), tmp_path_factory.mktemp("leaf"), "ec-client")


@pytest.fixture(scope="package")
def rsa_client(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Issued:
    """A client certificate for a fresh RSA-2048 key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return issue_client(services, key.public_key(), tmp_path_factory.mktemp("leaf"), "rsa-client")


@pytest.fixture
def migrated_engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database with the current schema and no CA."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def schemaless_engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite file to which no migration was ever applied."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    yield engine
    engine.dispose()
