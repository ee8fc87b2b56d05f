"""Identities for packaging: client keys with certificates from the session's issuing CA,
the server's TLS identity as the default profile signer, and an RSA signer made here."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pwa_server.pki.issuance import sign_certificate
from pwa_server.pki.packaging.mobileconfig import (
    SigningIdentity,
    build_configuration_profile,
    load_signing_identity,
)
from pwa_server.pki.packaging.pkcs12 import PrivateKey, build_pkcs12
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.pki.tls_identity import TlsFiles
from pwa_server.runtime import Services
from pwa_server.settings import Settings

PEM = serialization.Encoding.PEM
PREFIX = "test.shomei.enrollment"
ORGANIZATION = "Shomei"


@dataclass(frozen=True)
class Identity:
    """A private key and its certificate from the session's issuing CA."""

    private_key: PrivateKey
    certificate: x509.Certificate
    issuing: x509.Certificate
    root: x509.Certificate

    @property
    def common_name(self) -> str:
        return str(self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def issue_identity(
    services: Services,
    private_key: PrivateKey,
    name: str,
    profile: CertificateProfile = CertificateProfile.CLIENT,
) -> Identity:
    """Sign a certificate for `private_key` with the issuing CA in the token.

    Packaging needs only the certificate, so this uses the signing step of the issuance
    pipeline without recording anything in the database.
    """
    now = dt.datetime.now(dt.UTC)
    certificate = sign_certificate(
        services.issuing.private_key,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
        public_key=private_key.public_key(),
        issuer_name=services.issuing.certificate.subject,
        issuer_public_key=services.issuing.private_key.public_key(),
        profile=profile,
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=30),
        alt_names=["profiles.shomei.test"] if profile is CertificateProfile.TLS_SERVER else (),
    )
    return Identity(
        private_key, certificate, services.issuing.certificate, services.root.certificate
    )


def write_pem(path: Path, *items: x509.Certificate | PrivateKey) -> Path:
    """Write certificates and unencrypted PKCS#8 keys, in the order given, to one PEM file."""
    data = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            data += item.public_bytes(PEM)
        else:
            data += item.private_bytes(
                PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
    path.write_bytes(data)
    return path


@pytest.fixture(scope="package")
def ec_identity(services: Services) -> Identity:
    """An EC P-256 client identity (the default end-user key)."""
    return issue_identity(services, ec.generate_private_key(ec.SECP256R1()), "u-ec-7K3M9P")


@pytest.fixture(scope="package")
def rsa_identity(services: Services) -> Identity:
    """An RSA-2048 client identity (profiles may ask for RSA)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return issue_identity(services, key, "u-rsa-4HQ2WX")


@pytest.fixture(params=["ec", "rsa"])
def identity(
    request: pytest.FixtureRequest, ec_identity: Identity, rsa_identity: Identity
) -> Identity:
    """Each kind of end-user key in turn."""
    return ec_identity if request.param == "ec" else rsa_identity


@pytest.fixture
def download_password() -> str:
    """A fresh password well above the 60 bits the enrollment flow guarantees."""
    return secrets.token_urlsafe(15)


@pytest.fixture(scope="package")
def tls_signer(initialised: Settings) -> SigningIdentity:
    """The default profile signer: the listeners' TLS identity, as `shomei init` wrote it."""
    files = TlsFiles(initialised.tls_dir)
    return load_signing_identity(files.certificate_chain, files.private_key)


@pytest.fixture(scope="package")
def rsa_signer(services: Services, tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    """An RSA-2048 signer from the issuing CA, loaded from PEM files like a configured one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = issue_identity(services, key, "profiles.shomei.test", CertificateProfile.TLS_SERVER)
    directory = tmp_path_factory.mktemp("rsa-signer")
    return load_signing_identity(
        write_pem(directory / "signer.pem", signer.certificate, signer.issuing),
        write_pem(directory / "signer.key", key),
    )


def make_profile(identity: Identity, password: str, user_id: str | None = None) -> bytes:
    """An unsigned profile for `identity`, its PKCS#12 in the phone format."""
    p12 = build_pkcs12(
        private_key=identity.private_key,
        certificate=identity.certificate,
        chain=[identity.issuing],
        password=password,
        friendly_name=identity.common_name,
    )
    return build_configuration_profile(
        pkcs12=p12,
        root=identity.root,
        certificate_user_id=user_id or identity.common_name,
        organization=ORGANIZATION,
        identifier_prefix=PREFIX,
    )


@pytest.fixture
def profile_bytes(ec_identity: Identity, download_password: str) -> bytes:
    """An unsigned profile for the EC identity."""
    return make_profile(ec_identity, download_password)
