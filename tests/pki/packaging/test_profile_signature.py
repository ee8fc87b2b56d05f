"""Signed profiles: DER CMS SignedData that OpenSSL verifies against our root alone."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from pwa_server.pki.packaging.mobileconfig import SigningIdentity, sign_configuration_profile
from tests.conftest import openssl


def cms_verify(signed: Path, root: Path, content: Path) -> str:
    """Verify with only our root as trust anchor: the rest of the chain must be in the CMS.

    `-purpose any`: OpenSSL checks the signer for S/MIME signing by default, and the default
    signer, our TLS server certificate (extended key usage serverAuth only), is not one.
    """
    result = openssl(
        "cms", "-verify", "-inform", "DER", "-in", signed, "-CAfile", root,
        "-purpose", "any", "-out", content,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("signer_name", ["tls_signer", "rsa_signer"])
def test_the_signed_profile_verifies_and_carries_the_plist(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    profile_bytes: bytes,
    ca_files: dict[str, Path],
    signer_name: str,
) -> None:
    signer: SigningIdentity = request.getfixturevalue(signer_name)
    signed = tmp_path / "profile.mobileconfig"
    signed.write_bytes(sign_configuration_profile(profile_bytes, **signer_fields(signer)))
    content = tmp_path / "content.plist"
    assert "Verification successful" in cms_verify(signed, ca_files["root"], content)
    assert content.read_bytes() == profile_bytes
    assert plistlib.loads(content.read_bytes())["PayloadType"] == "Configuration"


def signer_fields(signer: SigningIdentity) -> dict[str, Any]:
    return {
        "certificate": signer.certificate,
        "private_key": signer.private_key,
        "chain": signer.chain,
    }


@pytest.mark.parametrize(
    ("signer_name", "algorithm"),
    [("tls_signer", "ecdsa-with-SHA256"), ("rsa_signer", "rsaEncryption")],
)
def test_the_signature_is_ecdsa_or_pkcs1_v15_with_sha256_never_pss(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    profile_bytes: bytes,
    signer_name: str,
    algorithm: str,
) -> None:
    signer: SigningIdentity = request.getfixturevalue(signer_name)
    signed = tmp_path / "profile.mobileconfig"
    signed.write_bytes(sign_configuration_profile(profile_bytes, **signer_fields(signer)))
    printed = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", signed)
    assert printed.returncode == 0, printed.stderr
    signature_algorithm = printed.stdout.split("signatureAlgorithm:")[1].splitlines()[1]
    assert f"algorithm: {algorithm}" in signature_algorithm
    assert "rsassaPss" not in printed.stdout
    digest_algorithm = printed.stdout.split("digestAlgorithm:")[1].splitlines()[1]
    assert "algorithm: sha256" in digest_algorithm


def test_the_signature_carries_the_signer_and_its_chain(
    tmp_path: Path, profile_bytes: bytes, tls_signer: SigningIdentity
) -> None:
    signed = tmp_path / "profile.mobileconfig"
    signed.write_bytes(sign_configuration_profile(profile_bytes, **signer_fields(tls_signer)))
    result = openssl("pkcs7", "-inform", "DER", "-in", signed, "-print_certs")
    assert result.returncode == 0, result.stderr
    carried = x509.load_pem_x509_certificates(result.stdout.encode())
    # CMS keeps certificates in a DER SET OF, sorted by encoding: compare without order.
    assert len(carried) == 1 + len(tls_signer.chain)
    assert set(carried) == {tls_signer.certificate, *tls_signer.chain}


def test_a_changed_profile_fails_verification(
    tmp_path: Path, profile_bytes: bytes, tls_signer: SigningIdentity, ca_files: dict[str, Path]
) -> None:
    signed_bytes = sign_configuration_profile(profile_bytes, **signer_fields(tls_signer))
    position = signed_bytes.index(b"<string>Configuration</string>")
    tampered = tmp_path / "tampered.mobileconfig"
    tampered.write_bytes(
        signed_bytes[:position] + b"<string>Configuratiom</string>" + signed_bytes[position + 30 :]
    )
    result = openssl(
        "cms", "-verify", "-inform", "DER", "-in", tampered, "-CAfile", ca_files["root"],
        "-purpose", "any", "-out", tmp_path / "content.plist",
    )  # fmt: skip
    assert result.returncode != 0
    assert "content verify error" in result.stderr
