"""What each kind of certificate our CAs sign says about itself (RFC 5280 extensions)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from pwa_server.runtime import Services
from pwa_server.settings import Settings
from tests.conftest import openssl
from tests.pki.conftest import Issued

YEAR = dt.timedelta(days=365)

_E = TypeVar("_E", bound=x509.ExtensionType)


def lifetime(certificate: x509.Certificate) -> dt.timedelta:
    return certificate.not_valid_after_utc - certificate.not_valid_before_utc


def extension(certificate: x509.Certificate, kind: type[_E]) -> x509.Extension[_E]:
    return certificate.extensions.get_extension_for_class(kind)


def curve_name(certificate: x509.Certificate) -> str:
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return public_key.curve.name


@pytest.fixture(scope="module")
def server_chain(initialised: Settings) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates((initialised.tls_dir / "server.pem").read_bytes())


@pytest.fixture(scope="module")
def server_leaf(
    server_chain: list[x509.Certificate], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("tls") / "server-leaf.pem"
    path.write_bytes(server_chain[0].public_bytes(Encoding.PEM))
    return path


# Root CA


def test_root_ca_key_is_ec_p384(services: Services) -> None:
    assert curve_name(services.root.certificate) == "secp384r1"


def test_root_ca_certificate_is_self_signed(services: Services) -> None:
    root = services.root.certificate
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)


def test_root_ca_is_a_ca_without_path_length_limit(services: Services) -> None:
    constraints = extension(services.root.certificate, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length is None


def test_root_ca_signs_only_certificates_and_crls(services: Services) -> None:
    usage = extension(services.root.certificate, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert not usage.value.key_encipherment


def test_root_ca_is_valid_for_about_twenty_years(services: Services) -> None:
    assert 20 * YEAR <= lifetime(services.root.certificate) <= 20 * YEAR + dt.timedelta(days=6)


def test_root_ca_is_named_after_the_organization(services: Services, initialised: Settings) -> None:
    organization = initialised.ca_organization
    assert services.root.certificate.subject.rfc4514_string() == (
        f"CN={organization} Root CA,O={organization}"
    )


# Issuing CA


def test_issuing_ca_key_is_ec_p256(services: Services) -> None:
    assert curve_name(services.issuing.certificate) == "secp256r1"


def test_issuing_ca_is_issued_by_the_root(services: Services, ca_files: dict[str, Path]) -> None:
    issuing, root = services.issuing.certificate, services.root.certificate
    assert issuing.issuer == root.subject
    issuing.verify_directly_issued_by(root)
    assert (
        extension(issuing, x509.AuthorityKeyIdentifier).value.key_identifier
        == extension(root, x509.SubjectKeyIdentifier).value.digest
    )
    result = openssl("verify", "-CAfile", ca_files["root"], ca_files["issuing"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_issuing_ca_may_sign_only_end_entity_certificates(services: Services) -> None:
    constraints = extension(services.issuing.certificate, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0


def test_issuing_ca_is_valid_for_about_ten_years(services: Services) -> None:
    assert 10 * YEAR <= lifetime(services.issuing.certificate) <= 10 * YEAR + dt.timedelta(days=3)


# Client certificates


def test_client_certificate_is_for_client_authentication(ec_client: Issued) -> None:
    usage = extension(ec_client.certificate, x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_client_certificate_is_not_a_ca(ec_client: Issued) -> None:
    constraints = extension(ec_client.certificate, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is False


def test_client_certificate_key_is_for_digital_signatures_only(ec_client: Issued) -> None:
    usage = extension(ec_client.certificate, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    assert not usage.value.crl_sign
    assert not usage.value.key_encipherment


def test_client_certificate_for_an_rsa_key_also_allows_key_encipherment(
    rsa_client: Issued,
) -> None:
    usage = extension(rsa_client.certificate, x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment


def test_client_certificate_identifies_its_key_and_its_issuers_key(
    services: Services, ec_client: Issued
) -> None:
    certificate = ec_client.certificate
    assert extension(certificate, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())
    )
    assert (
        extension(certificate, x509.AuthorityKeyIdentifier).value.key_identifier
        == extension(services.issuing.certificate, x509.SubjectKeyIdentifier).value.digest
    )


# TLS server certificate of the listeners


def test_tls_chain_file_holds_the_server_certificate_then_the_issuing_ca(
    services: Services, server_chain: list[x509.Certificate]
) -> None:
    assert len(server_chain) == 2
    assert server_chain[1] == services.issuing.certificate
    assert server_chain[0].issuer == services.issuing.certificate.subject


def test_tls_server_certificate_names_localhost_and_127_0_0_1(
    server_chain: list[x509.Certificate],
) -> None:
    names = extension(server_chain[0], x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_tls_server_certificate_is_for_server_authentication(
    server_chain: list[x509.Certificate],
) -> None:
    assert list(extension(server_chain[0], x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert extension(server_chain[0], x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize(
    "peer",
    [("-verify_hostname", "localhost"), ("-verify_ip", "127.0.0.1")],
    ids=["localhost", "127.0.0.1"],
)
def test_tls_server_certificate_verifies_with_openssl_for_its_names(
    server_leaf: Path, ca_files: dict[str, Path], peer: tuple[str, str]
) -> None:
    result = openssl(
        "verify",
        "-CAfile",
        ca_files["root"],
        "-untrusted",
        ca_files["issuing"],
        "-purpose",
        "sslserver",
        *peer,
        server_leaf,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{server_leaf}: OK"


def test_tls_server_certificate_does_not_verify_for_another_host_name(
    server_leaf: Path, ca_files: dict[str, Path]
) -> None:
    result = openssl(
        "verify",
        "-CAfile",
        ca_files["root"],
        "-untrusted",
        ca_files["issuing"],
        "-verify_hostname",
        "example.com",
        server_leaf,
    )
    assert result.returncode != 0
    assert "hostname mismatch" in result.stdout + result.stderr


def test_tls_server_certificate_never_outlives_the_issuing_ca(
    services: Services, server_chain: list[x509.Certificate]
) -> None:
    assert server_chain[0].not_valid_after_utc <= services.issuing.certificate.not_valid_after_utc
