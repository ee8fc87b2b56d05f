"""The installation check on the check port: every verdict is a page a person understands,
or a JSON status; a reissue revokes the old certificate once the new one is downloaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import Engine

from tests.e2e.journey.conftest import JourneyServer
from tests.e2e.journey.flow import (
    PIXEL,
    DownloadCredentials,
    Identity,
    Invitation,
    Phone,
    assert_person_page,
    certificates_of,
    check,
    check_status_of,
    credentials_of,
    heading,
    open_pkcs12,
)


def test_no_certificate_gives_status_missing(journey_server: JourneyServer) -> None:
    response = check(journey_server)
    assert response.status_code == 200
    assert response.json() == {"status": "missing"}


@pytest.mark.parametrize(
    ("language", "title"),
    [("en", "No certificate was presented"), ("ja", "証明書が提示されませんでした")],
)
def test_no_certificate_page_explains_what_to_do(
    journey_server: JourneyServer, language: str, title: str
) -> None:
    response = check(journey_server, as_json=False, language=language)
    assert response.status_code == 200
    assert_person_page(response)
    assert check_status_of(response.text) == "missing"
    assert heading(response.text) == title
    assert "Safari" in response.text  # what to do on an iPhone


def _foreign_identity(directory: Path) -> Identity:
    """A client certificate for a plausible user ID, signed by a CA that is not ours."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Elsewhere"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere Root CA"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shm-abcdefgh")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    identity = Identity(directory / "foreign.cert.pem", directory / "foreign.key.pem")
    identity.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    identity.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return identity


def test_foreign_certificate_gives_status_unknown(
    journey_server: JourneyServer, tmp_path: Path
) -> None:
    response = check(journey_server, _foreign_identity(tmp_path))
    assert response.status_code == 200
    assert response.json() == {"status": "unknown"}


def test_foreign_certificate_page_explains_it_is_not_from_this_service(
    journey_server: JourneyServer, tmp_path: Path
) -> None:
    response = check(journey_server, _foreign_identity(tmp_path), as_json=False)
    assert response.status_code == 200
    assert_person_page(response)
    assert check_status_of(response.text) == "unknown"
    assert heading(response.text) == "This certificate is not from this service"


# Run in a process of its own on the instance's data directory: our issuing CA (its key in
# the SoftHSM token) signs a certificate whose validity ended long ago, as if years passed.
_ISSUE_EXPIRED = """
import datetime as dt, sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.runtime import open_services
from pwa_server.settings import load_settings

services = open_services(load_settings())
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "shm-expired1")])
then = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
with services.engine.begin() as connection:
    certificate, _ = issue(
        connection, services.issuing, subject=name, public_key=key.public_key(),
        profile=CertificateProfile.CLIENT, now=then, lifetime=dt.timedelta(days=730),
    )
services.close()
Path(sys.argv[1]).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
Path(sys.argv[2]).write_bytes(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()))
"""


def test_expired_certificate_of_ours_gives_status_expired(
    journey_server: JourneyServer, tmp_path: Path
) -> None:
    identity = Identity(tmp_path / "expired.cert.pem", tmp_path / "expired.key.pem")
    issued = journey_server.shomei_python(_ISSUE_EXPIRED, *map(str, identity.files))
    assert issued.returncode == 0, issued.stderr
    assert check(journey_server, identity).json() == {"status": "expired"}
    page = check(journey_server, identity, as_json=False)
    assert_person_page(page)
    assert check_status_of(page.text) == "expired"
    assert heading(page.text) == "This certificate has expired"


def _download_p12(phone: Phone, credentials: DownloadCredentials, path: Path) -> Identity:
    response = phone.download(credentials, "android")
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return open_pkcs12(path, credentials.download_password)


def test_reissue_revokes_the_old_certificate_once_the_new_one_is_downloaded(
    journey_server: JourneyServer, invitation: Invitation, database: Engine, tmp_path: Path
) -> None:
    with Phone(journey_server, language="en", user_agent=PIXEL) as phone:
        first = phone.enroll(invitation, answer="Pochi")
        old = _download_p12(phone, first, tmp_path / "old.p12")
        assert check(journey_server, old).json()["status"] == "ok"

        # "A new phone": the secret answer (typed differently) gives a new download password.
        reissued = phone.reissue(first.certificate_user_id, "  POCHI ")
        assert reissued.status_code == 200, reissued.text
        second = credentials_of(reissued.text)
        assert second.certificate_user_id == first.certificate_user_id
        assert second.download_password != first.download_password
        # Until the new certificate is downloaded, the old one keeps working.
        assert check(journey_server, old).json()["status"] == "ok"

        new = _download_p12(phone, second, tmp_path / "new.p12")

    assert check(journey_server, old).json() == {"status": "revoked"}
    page = check(journey_server, old, as_json=False)
    assert_person_page(page)
    assert check_status_of(page.text) == "revoked"
    assert check(journey_server, new).json()["status"] == "ok"
    recorded = certificates_of(database, invitation.enrollment_id)
    assert [(row["status"], row["revocation_reason"]) for row in recorded] == [
        ("revoked", "superseded"),
        ("valid", None),
    ]
