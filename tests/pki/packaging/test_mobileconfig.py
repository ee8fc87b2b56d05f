"""Configuration profiles: Apple's payload schemas, the identifier, the texts, the payloads."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pwa_server.pki.packaging.mobileconfig import MEDIA_TYPE, build_configuration_profile
from tests.conftest import openssl
from tests.pki.packaging.apple_schema import check_profile
from tests.pki.packaging.conftest import ORGANIZATION, PREFIX, Identity, make_profile


@pytest.fixture
def profile(profile_bytes: bytes) -> dict[str, Any]:
    parsed = plistlib.loads(profile_bytes, fmt=plistlib.FMT_XML)
    assert isinstance(parsed, dict)
    return parsed


def payload(profile: dict[str, Any], payload_type: str) -> dict[str, Any]:
    (found,) = [item for item in profile["PayloadContent"] if item["PayloadType"] == payload_type]
    assert isinstance(found, dict)
    return found


def test_every_payload_follows_apples_schema(profile: dict[str, Any]) -> None:
    assert check_profile(profile) == []
    assert [item["PayloadType"] for item in profile["PayloadContent"]] == [
        "com.apple.security.pkcs12",
        "com.apple.security.root",
    ]


def test_the_schema_checker_finds_what_is_wrong(profile: dict[str, Any]) -> None:
    """The checker is not vacuous: each kind of mistake is reported."""
    del profile["PayloadUUID"]
    profile["PayloadVersion"] = "1"
    identity = payload(profile, "com.apple.security.pkcs12")
    identity["KeyIsExtractable"] = False  # macOS only
    identity["Colour"] = "blue"
    del payload(profile, "com.apple.security.root")["PayloadContent"]
    profile["ConsentText"]["fr"] = b"not text"
    profile["PayloadContent"].append({"PayloadType": "com.example.unknown"})
    problems = "\n".join(check_profile(profile))
    assert "profile: required key PayloadUUID is missing" in problems
    assert "profile: PayloadVersion is str, not <integer>" in problems
    assert "KeyIsExtractable is not supported on iOS" in problems
    assert "key Colour is not in the schema" in problems
    assert "(com.apple.security.root): required key PayloadContent is missing" in problems
    assert "ConsentText['fr'] is not <string>" in problems
    assert "no schema for PayloadType 'com.example.unknown'" in problems


def test_the_identity_payload_holds_the_pkcs12_without_a_password(
    profile: dict[str, Any], ec_identity: Identity
) -> None:
    identity = payload(profile, "com.apple.security.pkcs12")
    # Without Password, iOS asks the user for it at install; it must never travel here.
    assert "Password" not in identity
    assert identity["PayloadCertificateFileName"] == f"{ec_identity.common_name}.p12"
    assert isinstance(identity["PayloadContent"], bytes)
    assert identity["PayloadContent"].startswith(b"\x30")  # a DER PFX


def test_the_root_payload_holds_our_root_certificate(
    profile: dict[str, Any], ec_identity: Identity
) -> None:
    root = payload(profile, "com.apple.security.root")
    assert root["PayloadContent"] == ec_identity.root.public_bytes(Encoding.DER)
    assert x509.load_der_x509_certificate(root["PayloadContent"]) == ec_identity.root
    assert root["PayloadCertificateFileName"].endswith(".cer")


def test_the_identity_payload_opens_with_the_download_password(
    tmp_path: Path, profile: dict[str, Any], download_password: str
) -> None:
    path = tmp_path / "from-profile.p12"
    path.write_bytes(payload(profile, "com.apple.security.pkcs12")["PayloadContent"])
    result = openssl(
        "pkcs12", "-in", path, "-passin", f"pass:{download_password}", "-info", "-noout"
    )
    assert result.returncode == 0, result.stderr
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in result.stderr


def test_the_identifier_is_stable_per_certificate_user_id(
    ec_identity: Identity, download_password: str
) -> None:
    first = plistlib.loads(make_profile(ec_identity, download_password))
    second = plistlib.loads(make_profile(ec_identity, download_password))
    other = plistlib.loads(make_profile(ec_identity, download_password, "u-other-22XY"))
    assert first["PayloadIdentifier"] == second["PayloadIdentifier"]
    assert first["PayloadIdentifier"] == f"{PREFIX}.{ec_identity.common_name}"
    assert other["PayloadIdentifier"] == f"{PREFIX}.u-other-22XY"
    # Payload identifiers are stable too, and unique within the profile.
    assert [p["PayloadIdentifier"] for p in first["PayloadContent"]] == [
        p["PayloadIdentifier"] for p in second["PayloadContent"]
    ]
    assert len({p["PayloadIdentifier"] for p in first["PayloadContent"]}) == 2
    # Apple: UUIDs identify the contents, which differ (a fresh PKCS#12 each time).
    assert first["PayloadUUID"] != second["PayloadUUID"]


def test_top_level_type_version_and_texts(profile: dict[str, Any]) -> None:
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    assert profile["PayloadOrganization"] == ORGANIZATION
    assert profile["PayloadDisplayName"]
    assert "Client certificate" in profile["PayloadDescription"]
    assert "クライアント証明書" in profile["PayloadDescription"]


def test_consent_text_is_in_japanese_and_english_with_an_english_default(
    profile: dict[str, Any], ec_identity: Identity
) -> None:
    consent = profile["ConsentText"]
    assert set(consent) == {"ja", "en", "default"}
    assert consent["default"] == consent["en"]
    assert "client certificate" in consent["en"]
    assert "root CA" in consent["en"]
    assert "クライアント証明書" in consent["ja"]
    assert "ルートCA" in consent["ja"]
    for text in consent.values():
        assert ec_identity.common_name in text
        assert "Shomei Root CA" in text


@pytest.mark.parametrize("user_id", ["", "a/b", "a b", "a\nb", "..\\x"])
def test_an_unusable_certificate_user_id_is_refused(
    ec_identity: Identity, download_password: str, user_id: str
) -> None:
    with pytest.raises(ValueError, match="unusable certificate user ID"):
        build_configuration_profile(
            pkcs12=b"\x30",
            root=ec_identity.root,
            certificate_user_id=user_id,
            organization=ORGANIZATION,
            identifier_prefix=PREFIX,
        )


def test_media_type() -> None:
    assert MEDIA_TYPE == "application/x-apple-aspen-config"
