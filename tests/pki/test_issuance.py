"""The issuance pipeline: certificates that chain to our root, recorded before they leave."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from pwa_server.pki.issuance import BACKDATE, issue
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.runtime import Services
from pwa_server.store.certificates import certificate_by_serial
from tests.conftest import openssl
from tests.pki.conftest import CLIENT_LIFETIME, Issued


def recorded_der(services: Services, certificate: x509.Certificate) -> bytes | None:
    with services.engine.connect() as connection:
        return certificate_by_serial(
            connection, services.issuing.id, format(certificate.serial_number, "x")
        )


def test_client_certificate_from_the_issuing_ca_verifies_with_openssl_against_the_root(
    ec_client: Issued, ca_files: dict[str, Path]
) -> None:
    result = openssl(
        "verify",
        "-CAfile",
        ca_files["root"],
        "-untrusted",
        ca_files["issuing"],
        "-purpose",
        "sslclient",
        ec_client.pem,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{ec_client.pem}: OK"


def test_client_certificate_does_not_verify_without_the_issuing_ca(
    ec_client: Issued, ca_files: dict[str, Path]
) -> None:
    result = openssl("verify", "-CAfile", ca_files["root"], ec_client.pem)
    assert result.returncode != 0
    assert "unable to get local issuer certificate" in result.stdout + result.stderr


def test_issued_certificate_is_recorded_in_the_database_with_its_der(
    services: Services, ec_client: Issued
) -> None:
    assert recorded_der(services, ec_client.certificate) == ec_client.certificate.public_bytes(
        Encoding.DER
    )


def test_certificate_for_an_rsa_2048_key_verifies_with_openssl_and_is_recorded(
    services: Services, rsa_client: Issued, ca_files: dict[str, Path]
) -> None:
    result = openssl(
        "verify", "-CAfile", ca_files["root"], "-untrusted", ca_files["issuing"], rsa_client.pem
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert recorded_der(services, rsa_client.certificate) == rsa_client.certificate.public_bytes(
        Encoding.DER
    )


def test_issued_certificate_names_its_subject_and_the_issuing_ca(
    services: Services, ec_client: Issued
) -> None:
    certificate = ec_client.certificate
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ec-client"
    assert certificate.issuer == services.issuing.certificate.subject
    certificate.verify_directly_issued_by(services.issuing.certificate)


def test_certificate_validity_starts_a_little_before_issuance_and_lasts_the_lifetime(
    ec_client: Issued,
) -> None:
    certificate = ec_client.certificate
    assert certificate.not_valid_before_utc == ec_client.now - BACKDATE
    assert certificate.not_valid_after_utc == ec_client.now + CLIENT_LIFETIME


def test_certificate_never_outlives_its_issuer(services: Services) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    key = ec.generate_private_key(ec.SECP256R1())
    with services.engine.begin() as connection:
        certificate, _ = issue(
            connection,
            services.issuing,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "long-lived")]),
            public_key=key.public_key(),
            profile=CertificateProfile.CLIENT,
            now=now,
            lifetime=dt.timedelta(days=100 * 365),
        )
    assert certificate.not_valid_after_utc == services.issuing.certificate.not_valid_after_utc


def test_issuing_ca_never_outlives_the_root(services: Services) -> None:
    assert (
        services.issuing.certificate.not_valid_after_utc
        <= services.root.certificate.not_valid_after_utc
    )


def test_certificate_is_not_recorded_when_the_transaction_is_rolled_back(
    services: Services,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with services.engine.connect() as connection:
        transaction = connection.begin()
        certificate, _ = issue(
            connection,
            services.issuing,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rolled-back")]),
            public_key=key.public_key(),
            profile=CertificateProfile.CLIENT,
            now=dt.datetime.now(dt.UTC),
            lifetime=CLIENT_LIFETIME,
        )
        transaction.rollback()
    assert recorded_der(services, certificate) is None
