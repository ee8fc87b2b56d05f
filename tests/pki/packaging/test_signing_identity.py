"""Loading the profile-signing identity at start-up, and the errors an operator sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pwa_server.pki.packaging import PackagingError
from pwa_server.pki.packaging.mobileconfig import SigningIdentity, load_signing_identity
from pwa_server.pki.tls_identity import TlsFiles
from pwa_server.settings import Settings
from tests.pki.packaging.conftest import Identity, write_pem


def test_the_tls_identity_loads_with_the_issuing_ca_as_its_chain(
    tls_signer: SigningIdentity, ca_files: dict[str, Path]
) -> None:
    issuing = ca_files["issuing"].read_bytes()
    assert [c.public_bytes(serialization.Encoding.PEM) for c in tls_signer.chain] == [issuing]
    assert tls_signer.private_key.public_key() == tls_signer.certificate.public_key()


def test_an_rsa_identity_loads(tmp_path: Path, rsa_identity: Identity) -> None:
    loaded = load_signing_identity(
        write_pem(tmp_path / "chain.pem", rsa_identity.certificate, rsa_identity.issuing),
        write_pem(tmp_path / "key.pem", rsa_identity.private_key),
    )
    assert loaded.certificate == rsa_identity.certificate
    assert loaded.chain == (rsa_identity.issuing,)
    assert isinstance(loaded.private_key, rsa.RSAPrivateKey)
    assert isinstance(rsa_identity.private_key, rsa.RSAPrivateKey)
    assert loaded.private_key.private_numbers() == rsa_identity.private_key.private_numbers()


def test_a_missing_certificate_file_is_named(tmp_path: Path, initialised: Settings) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(PackagingError, match=r"certificate chain .*nowhere\.pem: No such file"):
        load_signing_identity(missing, TlsFiles(initialised.tls_dir).private_key)


def test_a_missing_key_file_is_named(tmp_path: Path, initialised: Settings) -> None:
    missing = tmp_path / "nokey.pem"
    with pytest.raises(PackagingError, match=r"private key .*nokey\.pem: No such file"):
        load_signing_identity(TlsFiles(initialised.tls_dir).certificate_chain, missing)


def test_a_key_that_does_not_match_the_certificate_is_refused(
    tmp_path: Path, initialised: Settings
) -> None:
    other_key = write_pem(tmp_path / "other.key", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(PackagingError, match="does not belong to the first certificate"):
        load_signing_identity(TlsFiles(initialised.tls_dir).certificate_chain, other_key)


def test_a_chain_in_the_wrong_order_is_refused(tmp_path: Path, ec_identity: Identity) -> None:
    key = write_pem(tmp_path / "key.pem", ec_identity.private_key)
    # The issuing CA first: the key does not belong to it.
    reversed_chain = write_pem(tmp_path / "rev.pem", ec_identity.issuing, ec_identity.certificate)
    with pytest.raises(PackagingError, match="does not belong"):
        load_signing_identity(reversed_chain, key)
    # The leaf first, then the root instead of the issuing CA.
    skipping = write_pem(tmp_path / "skip.pem", ec_identity.certificate, ec_identity.root)
    with pytest.raises(PackagingError, match="certificate 1 was not issued by certificate 2"):
        load_signing_identity(skipping, key)


def test_a_file_without_certificates_is_refused(tmp_path: Path, ec_identity: Identity) -> None:
    key = write_pem(tmp_path / "key.pem", ec_identity.private_key)
    with pytest.raises(PackagingError, match="holds no readable PEM certificate"):
        load_signing_identity(key, key)


def test_an_encrypted_key_is_refused(tmp_path: Path, ec_identity: Identity) -> None:
    chain = write_pem(tmp_path / "chain.pem", ec_identity.certificate, ec_identity.issuing)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        ec_identity.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(PackagingError, match="holds no unencrypted PEM private key"):
        load_signing_identity(chain, encrypted)
