"""PKCS#12 files, opened by tools nobody here wrote: OpenSSL 3 and Java's keytool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pwa_server.pki.packaging.pkcs12 import ROUNDS, build_pkcs12
from tests.conftest import openssl, run_tool
from tests.pki.packaging.conftest import Identity

FORMATS = pytest.mark.parametrize("phone_compatible", [True, False], ids=["phone", "modern"])


def write_pkcs12(
    directory: Path, identity: Identity, password: str, *, phone_compatible: bool
) -> Path:
    path = directory / f"{identity.common_name}.p12"
    path.write_bytes(
        build_pkcs12(
            private_key=identity.private_key,
            certificate=identity.certificate,
            chain=[identity.issuing],
            password=password,
            friendly_name=identity.common_name,
            phone_compatible=phone_compatible,
        )
    )
    return path


def succeeded(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def keytool_list(path: Path, password: str) -> subprocess.CompletedProcess[str]:
    return run_tool(
        "keytool", "-list", "-v", "-storetype", "PKCS12", "-keystore", path, "-storepass", password
    )


@FORMATS
def test_openssl_opens_it_without_the_legacy_provider(
    tmp_path: Path, identity: Identity, download_password: str, phone_compatible: bool
) -> None:
    # OpenSSL 3 moved RC2-40 and single DES to the legacy provider, but not 3DES: the
    # phone-compatible file opens with the default provider, so no -legacy here.
    path = write_pkcs12(tmp_path, identity, download_password, phone_compatible=phone_compatible)
    result = succeeded(
        openssl("pkcs12", "-in", path, "-passin", f"pass:{download_password}", "-nodes")
    )
    assert "-----BEGIN PRIVATE KEY-----" in result.stdout
    assert result.stdout.count("-----BEGIN CERTIFICATE-----") == 2


@FORMATS
def test_the_extracted_key_matches_the_certificate_and_the_chain_is_included(
    tmp_path: Path, identity: Identity, download_password: str, phone_compatible: bool
) -> None:
    path = write_pkcs12(tmp_path, identity, download_password, phone_compatible=phone_compatible)
    password = f"pass:{download_password}"
    key = tmp_path / "key.pem"
    leaf = tmp_path / "leaf.pem"
    succeeded(
        openssl("pkcs12", "-in", path, "-passin", password, "-nocerts", "-nodes", "-out", key)
    )
    # -clcerts: the certificate that carries the key's localKeyID; -cacerts: all others.
    succeeded(
        openssl("pkcs12", "-in", path, "-passin", password, "-clcerts", "-nokeys", "-out", leaf)
    )
    cas = succeeded(openssl("pkcs12", "-in", path, "-passin", password, "-cacerts", "-nokeys"))

    key_public = succeeded(openssl("pkey", "-in", key, "-pubout")).stdout
    leaf_public = succeeded(openssl("x509", "-in", leaf, "-pubkey", "-noout")).stdout
    assert key_public == leaf_public
    assert x509.load_pem_x509_certificate(leaf.read_bytes()) == identity.certificate
    assert x509.load_pem_x509_certificates(cas.stdout.encode()) == [identity.issuing]
    extracted = serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert extracted.public_key() == identity.private_key.public_key()


@FORMATS
def test_keytool_lists_one_private_key_entry_with_its_chain(
    tmp_path: Path, identity: Identity, download_password: str, phone_compatible: bool
) -> None:
    path = write_pkcs12(tmp_path, identity, download_password, phone_compatible=phone_compatible)
    listing = succeeded(keytool_list(path, download_password)).stdout
    assert "Your keystore contains 1 entry" in listing
    # The alias is the friendly name; Java's PKCS12 keystore lower-cases aliases.
    assert f"Alias name: {identity.common_name.lower()}" in listing
    assert "Entry type: PrivateKeyEntry" in listing
    assert "Certificate chain length: 2" in listing


@FORMATS
def test_a_wrong_password_is_refused_by_openssl_and_keytool(
    tmp_path: Path, ec_identity: Identity, download_password: str, phone_compatible: bool
) -> None:
    path = write_pkcs12(tmp_path, ec_identity, download_password, phone_compatible=phone_compatible)
    wrong = download_password[:-1] + ("A" if download_password[-1] != "A" else "B")
    result = openssl("pkcs12", "-in", path, "-passin", f"pass:{wrong}", "-nodes")
    assert result.returncode != 0
    assert "Mac verify error" in result.stderr
    result = keytool_list(path, wrong)
    assert result.returncode != 0
    assert "keystore password was incorrect" in result.stdout + result.stderr


def encryption_info(path: Path, password: str) -> str:
    """What `openssl pkcs12 -info` says about the MAC and the encryption (it writes stderr)."""
    result = succeeded(
        openssl("pkcs12", "-in", path, "-passin", f"pass:{password}", "-info", "-noout")
    )
    return result.stderr


def test_the_phone_format_is_3des_with_a_sha1_mac(
    tmp_path: Path, ec_identity: Identity, download_password: str
) -> None:
    info = encryption_info(
        write_pkcs12(tmp_path, ec_identity, download_password, phone_compatible=True),
        download_password,
    )
    assert "MAC: sha1, Iteration 2048" in info
    assert f"PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration {ROUNDS}" in info
    assert f"Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration {ROUNDS}" in info
    assert "PBES2" not in info
    assert "RC2" not in info


def test_the_modern_format_is_aes_256_with_pbkdf2_and_a_sha256_mac(
    tmp_path: Path, ec_identity: Identity, download_password: str
) -> None:
    info = encryption_info(
        write_pkcs12(tmp_path, ec_identity, download_password, phone_compatible=False),
        download_password,
    )
    assert "MAC: sha256, Iteration 2048" in info
    modern = f"PBES2, PBKDF2, AES-256-CBC, Iteration {ROUNDS}, PRF hmacWithSHA256"
    assert f"Shrouded Keybag: {modern}" in info
    assert f"PKCS7 Encrypted data: {modern}" in info
    assert "TripleDES" not in info


def test_rounds_equal_the_mac_iterations_which_bound_an_attackers_cost(
    tmp_path: Path, ec_identity: Identity, download_password: str
) -> None:
    """ROUNDS is chosen as the MAC's iteration count (see pkcs12.py); if cryptography ever
    lets us raise the MAC's count, this fails and the choice deserves a second look."""
    info = encryption_info(
        write_pkcs12(tmp_path, ec_identity, download_password, phone_compatible=True),
        download_password,
    )
    mac_iterations = re.search(r"MAC: \w+, Iteration (\d+)", info)
    assert mac_iterations is not None, info
    assert int(mac_iterations.group(1)) == ROUNDS


@pytest.mark.parametrize("phone_compatible", [True, False])
def test_an_empty_password_is_refused(ec_identity: Identity, phone_compatible: bool) -> None:
    with pytest.raises(ValueError, match="non-empty password"):
        build_pkcs12(
            private_key=ec_identity.private_key,
            certificate=ec_identity.certificate,
            chain=[ec_identity.issuing],
            password="",
            friendly_name=ec_identity.common_name,
            phone_compatible=phone_compatible,
        )


def test_a_key_that_does_not_match_the_certificate_is_refused(
    ec_identity: Identity, rsa_identity: Identity, download_password: str
) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        build_pkcs12(
            private_key=rsa_identity.private_key,
            certificate=ec_identity.certificate,
            chain=[ec_identity.issuing],
            password=download_password,
            friendly_name=ec_identity.common_name,
        )
