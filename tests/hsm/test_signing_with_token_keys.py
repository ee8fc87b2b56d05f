"""cryptography signs certificates, CRLs, OCSP responses and CMS with keys that stay in the token.

Every output is checked by openssl, which knows nothing about the token.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from hsm import (
    KeyAlgorithm,
    KeyRef,
    TokenECPrivateKey,
    TokenPrivateKey,
    TokenRSAPrivateKey,
    UnsupportedOperationError,
)
from pwa_server.runtime import Services
from tests.conftest import run_tool as run

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
MESSAGE = b"signed inside the token\n"

# The hash each algorithm signs with in these tests (covers SHA-256 and SHA-384).
HASH_OF: dict[KeyAlgorithm, type[hashes.SHA256 | hashes.SHA384]] = {
    KeyAlgorithm.EC_P256: hashes.SHA256,
    KeyAlgorithm.EC_P384: hashes.SHA384,
    KeyAlgorithm.RSA_3072: hashes.SHA256,
}

ALGORITHMS = pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=str)


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def self_signed(
    key: TokenPrivateKey, common_name: str, rsa_padding: padding.PSS | None = None
) -> x509.Certificate:
    """A self-signed certificate of a token key, fit for certificate and CMS signing."""
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(name(common_name))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, HASH_OF[key.ref.algorithm](), rsa_padding=rsa_padding)
    )


def write_pem(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(PEM))
    return path


@pytest.fixture(scope="module")
def token_keys(
    services: Services, generated_keys: dict[KeyAlgorithm, KeyRef]
) -> dict[KeyAlgorithm, TokenPrivateKey]:
    return {algorithm: services.token.private_key(ref) for algorithm, ref in generated_keys.items()}


@pytest.fixture(scope="module")
def certificates(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey], tmp_path_factory: pytest.TempPathFactory
) -> dict[KeyAlgorithm, Path]:
    """Self-signed certificate file of each generated token key."""
    directory = tmp_path_factory.mktemp("self-signed")
    return {
        algorithm: write_pem(directory / f"{algorithm}.pem", self_signed(key, f"test {algorithm}"))
        for algorithm, key in token_keys.items()
    }


@pytest.fixture(scope="module")
def leaf(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An end-entity certificate signed by the issuing CA's token key."""
    subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issuing = services.issuing
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("leaf"))
        .issuer_name(issuing.certificate.subject)
        .public_key(subject_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing.private_key.public_key()),
            critical=False,
        )
        .sign(issuing.private_key, hashes.SHA256())
    )
    return write_pem(tmp_path_factory.mktemp("leaf") / "leaf.pem", certificate)


@ALGORITHMS
def test_self_signed_certificate_signed_in_the_token_verifies_with_openssl(
    certificates: dict[KeyAlgorithm, Path], algorithm: KeyAlgorithm
) -> None:
    path = certificates[algorithm]
    result = run("openssl", "verify", "-CAfile", path, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{path}: OK"


def test_rsa_pss_signed_certificate_verifies_with_openssl(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey], tmp_path: Path
) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    certificate = self_signed(token_keys[KeyAlgorithm.RSA_3072], "pss", rsa_padding=pss)
    path = write_pem(tmp_path / "pss.pem", certificate)
    text = run("openssl", "x509", "-in", path, "-noout", "-text").stdout
    assert "Signature Algorithm: rsassaPss" in text

    result = run("openssl", "verify", "-CAfile", path, path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_crl_signed_by_the_issuing_key_verifies_with_openssl(
    services: Services, ca_files: dict[str, Path], tmp_path: Path
) -> None:
    issuing = services.issuing
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuing.certificate.subject)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(0x1234).revocation_date(NOW).build()
        )
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(issuing.private_key, hashes.SHA256())
    )
    path = tmp_path / "crl.pem"
    path.write_bytes(crl.public_bytes(PEM))

    result = run("openssl", "crl", "-in", path, "-CAfile", ca_files["issuing"], "-noout", "-verify")

    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr


def test_ocsp_response_signed_by_the_issuing_key_verifies_with_openssl(
    services: Services, ca_files: dict[str, Path], leaf: Path, tmp_path: Path
) -> None:
    issuing = services.issuing
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=x509.load_pem_x509_certificate(leaf.read_bytes()),
            issuer=issuing.certificate,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuing.certificate)
        .sign(issuing.private_key, hashes.SHA256())
    )
    path = tmp_path / "response.der"
    path.write_bytes(response.public_bytes(DER))

    result = run(
        "openssl",
        "ocsp",
        "-respin",
        path,
        "-CAfile",
        ca_files["root"],
        "-issuer",
        ca_files["issuing"],
        "-sha256",
        "-cert",
        leaf,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Response verify OK" in result.stderr
    assert f"{leaf}: good" in result.stdout


@ALGORITHMS
def test_cms_signature_made_in_the_token_verifies_with_openssl(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey],
    certificates: dict[KeyAlgorithm, Path],
    algorithm: KeyAlgorithm,
    tmp_path: Path,
) -> None:
    certificate = x509.load_pem_x509_certificate(certificates[algorithm].read_bytes())
    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(MESSAGE)
        .add_signer(certificate, token_keys[algorithm], HASH_OF[algorithm]())
        .sign(DER, [pkcs7.PKCS7Options.Binary])
    )
    signed_path = tmp_path / "signed.der"
    signed_path.write_bytes(signed)
    content = tmp_path / "content"

    result = run(
        "openssl",
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        signed_path,
        "-CAfile",
        certificates[algorithm],
        "-out",
        content,
    )

    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    assert content.read_bytes() == MESSAGE


@pytest.mark.parametrize("hash_type", [hashes.SHA256, hashes.SHA384, hashes.SHA512])
def test_rsa_pkcs1v15_signature_verifies_with_the_public_key(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey], hash_type: type[hashes.HashAlgorithm]
) -> None:
    key = token_keys[KeyAlgorithm.RSA_3072]
    assert isinstance(key, TokenRSAPrivateKey)

    signature = key.sign(MESSAGE, padding.PKCS1v15(), hash_type())

    key.public_key().verify(signature, MESSAGE, padding.PKCS1v15(), hash_type())


def test_rsa_pkcs1v15_signature_of_a_prehashed_digest_verifies_with_the_public_key(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey],
) -> None:
    key = token_keys[KeyAlgorithm.RSA_3072]
    assert isinstance(key, TokenRSAPrivateKey)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(MESSAGE)

    signature = key.sign(digest.finalize(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    key.public_key().verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    ("hash_type", "pss"),
    [
        (hashes.SHA256, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)),
        (hashes.SHA256, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH)),
        (hashes.SHA384, padding.PSS(padding.MGF1(hashes.SHA384()), 20)),
        (hashes.SHA512, padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.DIGEST_LENGTH)),
    ],
    ids=["sha256-digest-length", "sha256-max-length", "sha384-salt-20", "sha512-digest-length"],
)
def test_rsa_pss_signature_verifies_with_the_public_key(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey],
    hash_type: type[hashes.HashAlgorithm],
    pss: padding.PSS,
) -> None:
    key = token_keys[KeyAlgorithm.RSA_3072]
    assert isinstance(key, TokenRSAPrivateKey)

    signature = key.sign(MESSAGE, pss, hash_type())

    key.public_key().verify(signature, MESSAGE, pss, hash_type())


def test_rsa_pss_with_automatic_salt_length_is_refused_for_signing(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey],
) -> None:
    key = token_keys[KeyAlgorithm.RSA_3072]
    assert isinstance(key, TokenRSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    with pytest.raises(UnsupportedOperationError, match="AUTO"):
        key.sign(MESSAGE, pss, hashes.SHA256())


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384], ids=str)
def test_ecdsa_signature_verifies_with_the_public_key(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey], algorithm: KeyAlgorithm
) -> None:
    key = token_keys[algorithm]
    assert isinstance(key, TokenECPrivateKey)
    ecdsa = ec.ECDSA(HASH_OF[algorithm]())

    signature = key.sign(MESSAGE, ecdsa)

    key.public_key().verify(signature, MESSAGE, ecdsa)


def test_ecdsa_signature_of_a_prehashed_digest_verifies_with_the_public_key(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey],
) -> None:
    key = token_keys[KeyAlgorithm.EC_P256]
    assert isinstance(key, TokenECPrivateKey)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(MESSAGE)

    signature = key.sign(digest.finalize(), ec.ECDSA(Prehashed(hashes.SHA256())))

    key.public_key().verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))


@ALGORITHMS
def test_private_bytes_of_a_token_key_is_refused(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey], algorithm: KeyAlgorithm
) -> None:
    with pytest.raises(UnsupportedOperationError, match="never leaves the token"):
        token_keys[algorithm].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@ALGORITHMS
def test_private_numbers_of_a_token_key_is_refused(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey], algorithm: KeyAlgorithm
) -> None:
    with pytest.raises(UnsupportedOperationError, match="never leaves the token"):
        token_keys[algorithm].private_numbers()


def test_rsa_token_key_refuses_to_decrypt(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey],
) -> None:
    key = token_keys[KeyAlgorithm.RSA_3072]
    assert isinstance(key, rsa.RSAPrivateKey)
    ciphertext = key.public_key().encrypt(b"secret", padding.PKCS1v15())
    with pytest.raises(UnsupportedOperationError):
        key.decrypt(ciphertext, padding.PKCS1v15())


def test_ec_token_key_refuses_key_agreement(
    token_keys: dict[KeyAlgorithm, TokenPrivateKey],
) -> None:
    key = token_keys[KeyAlgorithm.EC_P256]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(UnsupportedOperationError):
        key.exchange(ec.ECDH(), peer)
