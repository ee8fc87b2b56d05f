"""The whole journey for iPhone and Android: invitation mail, one-time password, secret
question, download password, download guide mail, download, the phone opening the file, and
the installation check over mutual TLS."""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine

from tests.conftest import openssl
from tests.e2e.journey.conftest import SENDER, InvitationPool, JourneyServer
from tests.e2e.journey.flow import (
    IPHONE,
    PIXEL,
    DownloadCredentials,
    Identity,
    Invitation,
    Mail,
    Mailbox,
    Phone,
    certificates_of,
    check,
    check_status_of,
    credentials_of,
    element_text,
    enrollment_row,
    keytool_list,
    open_pkcs12,
)
from tests.pki.packaging.apple_schema import check_profile

UNAMBIGUOUS = set("23456789abcdefghjkmnpqrstuvwxyz")
PKCS12_PAYLOAD = "com.apple.security.pkcs12"
ROOT_PAYLOAD = "com.apple.security.root"


@dataclass(frozen=True)
class Journey:
    """Everything one person saw and received, from the invitation to the downloaded file."""

    platform: str
    invitation: Invitation
    invitation_mail: Mail
    otp_page: httpx.Response
    secret_page: httpx.Response
    password_page: httpx.Response
    credentials: DownloadCredentials
    guide_mail: Mail
    download_form: httpx.Response
    download: httpx.Response
    directory: Path

    @property
    def saved_file(self) -> Path:
        suffix = ".mobileconfig" if self.platform == "ios" else ".p12"
        path = self.directory / f"download{suffix}"
        if not path.exists():
            path.write_bytes(self.download.content)
        return path

    def profile_xml(self) -> bytes:
        """The plist inside the signed profile, taken out without judging the signature."""
        out = self.directory / "profile.plist"
        result = openssl(
            "cms", "-verify", "-noverify", "-inform", "DER", "-in", self.saved_file, "-out", out
        )
        assert result.returncode == 0, result.stderr
        return out.read_bytes()

    def profile(self) -> dict[str, Any]:
        parsed: dict[str, Any] = plistlib.loads(self.profile_xml())
        return parsed

    def pkcs12(self) -> Path:
        """The PKCS#12 the phone installs: the .p12 itself, or the profile's pkcs12 payload."""
        if self.platform != "ios":
            return self.saved_file
        path = self.directory / "payload.p12"
        if not path.exists():
            payload = payload_of(self.profile(), PKCS12_PAYLOAD)
            path.write_bytes(payload["PayloadContent"])
        return path

    def identity(self) -> Identity:
        return open_pkcs12(self.pkcs12(), self.credentials.download_password)


def payload_of(profile: dict[str, Any], payload_type: str) -> dict[str, Any]:
    found = [p for p in profile["PayloadContent"] if p["PayloadType"] == payload_type]
    assert len(found) == 1, f"{len(found)} payloads of type {payload_type}"
    payload: dict[str, Any] = found[0]
    return payload


def walk(
    server: JourneyServer,
    mailbox: Mailbox,
    invitation: Invitation,
    platform: str,
    directory: Path,
) -> Journey:
    agent = IPHONE if platform == "ios" else PIXEL
    invitation_mail = mailbox.wait_for(invitation.email, "Certificate enrollment")
    with Phone(server, language="ja", user_agent=agent) as phone:
        otp_page = phone.get(invitation.enrollment_url)
        secret_page = phone.submit_one_time_password(invitation, invitation.one_time_password)
        password_page = phone.register_secret(invitation.enrollment_url, "  ポチ ")
        credentials = credentials_of(password_page.text)
        guide_mail = mailbox.wait_for(invitation.email, "Certificate download guide")
        download_form = phone.get("/download")
        download = phone.download(credentials, platform)
    return Journey(
        platform,
        invitation,
        invitation_mail,
        otp_page,
        secret_page,
        password_page,
        credentials,
        guide_mail,
        download_form,
        download,
        directory,
    )


@pytest.fixture(scope="module")
def ios(
    journey_server: JourneyServer,
    mailbox: Mailbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Journey:
    # This one is made by the `shomei enroll create --json` command itself, as an admin types it.
    invitation = journey_server.invite("site-user-iphone", "iphone@example.jp")
    return walk(journey_server, mailbox, invitation, "ios", tmp_path_factory.mktemp("ios"))


@pytest.fixture(scope="module")
def android(
    journey_server: JourneyServer,
    mailbox: Mailbox,
    invitations: InvitationPool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Journey:
    return walk(
        journey_server,
        mailbox,
        invitations.take(),
        "android",
        tmp_path_factory.mktemp("android"),
    )


@pytest.fixture(params=["ios", "android"])
def journey(request: pytest.FixtureRequest) -> Journey:
    walked: Journey = request.getfixturevalue(request.param)
    return walked


def test_invitation_mail_carries_the_enrollment_url_but_not_the_one_time_password(
    journey: Journey,
) -> None:
    mail = journey.invitation_mail
    assert mail.recipients == [journey.invitation.email]
    assert mail.message["from"] == SENDER
    assert journey.invitation.enrollment_url in mail.text
    assert journey.invitation.one_time_password not in mail.text
    assert journey.invitation.one_time_password not in mail.subject


def test_enrollment_url_asks_for_the_one_time_password_then_the_secret_question(
    journey: Journey,
) -> None:
    assert journey.otp_page.status_code == 200
    assert 'name="one_time_password"' in journey.otp_page.text
    assert journey.secret_page.status_code == 200
    assert str(journey.secret_page.url) == f"{journey.invitation.enrollment_url}/secret"
    for field in (
        '<select id="question" name="question"',
        'name="answer"',
        'name="answer_confirm"',
    ):
        assert field in journey.secret_page.text
    assert 'value="first-pet"' in journey.secret_page.text


def test_download_password_page_shows_the_certificate_user_id_and_a_grouped_password(
    journey: Journey,
) -> None:
    page = journey.password_page
    assert page.status_code == 200
    assert re.fullmatch(r"shm-[a-z0-9]{8}", journey.credentials.certificate_user_id)
    password = journey.credentials.download_password
    # >= 60 bits from the 31 unambiguous characters: at least 13 of them.
    assert len(password) >= 13
    assert set(password) <= UNAMBIGUOUS
    assert element_text(page.text, "download-password") == password
    # The note that the phone asks for the same password at install.
    assert "スマートフォンが同じパスワードを求めます" in page.text
    assert 'href="/download"' in page.text


def test_download_guide_mail_carries_the_user_id_and_url_but_not_the_password(
    journey: Journey, journey_server: JourneyServer
) -> None:
    mail = journey.guide_mail
    password = journey.credentials.download_password
    assert mail.recipients == [journey.invitation.email]
    assert journey.credentials.certificate_user_id in mail.text
    assert f"{journey_server.base_url}/download" in mail.text
    flattened = re.sub(r"[\s-]", "", mail.text)
    assert password not in flattened
    assert password[:4] not in mail.text.split()


def test_download_form_preselects_the_phone_from_the_user_agent(journey: Journey) -> None:
    assert journey.download_form.status_code == 200
    assert f'value="{journey.platform}" checked' in journey.download_form.text


def test_download_form_has_the_certificate_user_id_of_this_browsers_enrollment(
    journey: Journey,
) -> None:
    user_id = journey.credentials.certificate_user_id
    assert 'name="certificate_user_id"' in journey.download_form.text
    assert f'value="{user_id}"' in journey.download_form.text


def test_download_form_takes_no_certificate_user_id_from_the_url_or_another_browser(
    journey: Journey, journey_server: JourneyServer
) -> None:
    user_id = journey.credentials.certificate_user_id
    with Phone(journey_server, language="en") as other:
        form = other.get(f"/download?certificate_user_id={user_id}")
    assert form.status_code == 200
    assert user_id not in form.text
    assert 'id="certificate_user_id" name="certificate_user_id"' in form.text


def test_download_is_delivered_with_the_platforms_media_type(journey: Journey) -> None:
    expected = {
        "ios": ("application/x-apple-aspen-config", ".mobileconfig"),
        "android": ("application/x-pkcs12", ".p12"),
    }[journey.platform]
    response = journey.download
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == expected[0]
    name = f"{journey.credentials.certificate_user_id}{expected[1]}"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.headers["cache-control"] == "no-store"


def test_ios_profile_signature_verifies_with_openssl_cms(ios: Journey, root_pem: Path) -> None:
    out = ios.directory / "verified.plist"
    result = openssl(
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        ios.saved_file,
        "-purpose",
        "any",
        "-CAfile",
        root_pem,
        "-out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    assert out.read_bytes() == ios.profile_xml()


def test_ios_profile_follows_apples_schema(ios: Journey, root_pem: Path) -> None:
    profile = ios.profile()
    assert check_profile(profile) == []
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    assert ios.credentials.certificate_user_id in profile["PayloadIdentifier"]
    assert {"ja", "en"} <= set(profile["ConsentText"])
    identity = payload_of(profile, PKCS12_PAYLOAD)
    assert "Password" not in identity  # iOS asks the user for the download password
    root = payload_of(profile, ROOT_PAYLOAD)
    assert x509.load_der_x509_certificate(root["PayloadContent"]) == (
        x509.load_pem_x509_certificate(root_pem.read_bytes())
    )


def test_pkcs12_opens_with_openssl_and_the_download_password(journey: Journey) -> None:
    identity = journey.identity()
    certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
    common_name = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0]
    assert common_name.value == journey.credentials.certificate_user_id
    assert b"PRIVATE KEY" in identity.key.read_bytes()
    wrong = openssl("pkcs12", "-in", journey.pkcs12(), "-passin", "pass:wrong", "-nokeys")
    assert wrong.returncode != 0


def test_pkcs12_opens_with_java_keytool_and_the_download_password(journey: Journey) -> None:
    listing = keytool_list(journey.pkcs12(), journey.credentials.download_password)
    assert "PrivateKeyEntry" in listing


def test_extracted_certificate_is_ok_at_the_check_and_the_enrollment_becomes_installed(
    journey: Journey, journey_server: JourneyServer, database: Engine
) -> None:
    identity = journey.identity()
    certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
    response = check(journey_server, identity)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "certificate_user_id": journey.credentials.certificate_user_id,
        "serial": format(certificate.serial_number, "x"),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }
    row = enrollment_row(database, journey.invitation.enrollment_id)
    assert row["status"] == "installed"
    assert row["installed_at"] is not None
    recorded = certificates_of(database, journey.invitation.enrollment_id)
    assert [bytes(r["certificate_der"]) for r in recorded] == [
        certificate.public_bytes(Encoding.DER)
    ]


def test_check_page_says_the_certificate_is_installed_and_usable(
    journey: Journey, journey_server: JourneyServer
) -> None:
    response = check(journey_server, journey.identity(), as_json=False)
    assert response.status_code == 200
    assert check_status_of(response.text) == "ok"
    assert "installed and usable" in response.text
    certificate = x509.load_pem_x509_certificate(journey.identity().certificate.read_bytes())
    assert f"CN={journey.credentials.certificate_user_id}" in response.text
    assert "CN=Shomei Issuing CA" in response.text
    assert f"<code>{certificate.serial_number:X}</code>" in response.text


def test_the_download_password_may_be_typed_as_shown_in_groups(
    journey_server: JourneyServer, invitations: InvitationPool, tmp_path: Path
) -> None:
    invitation = invitations.take()
    with Phone(journey_server, language="en", user_agent=PIXEL) as phone:
        shown = phone.enroll(invitation)
        password = shown.download_password
        as_typed = " ".join(password[i : i + 4] for i in range(0, len(password), 4)).upper()
        response = phone.download(shown, "android", password=f" {as_typed} ")
    assert response.status_code == 200, response.text
    p12 = tmp_path / "typed.p12"
    p12.write_bytes(response.content)
    # The phone's password is the same characters, without the spaces.
    assert "PrivateKeyEntry" in keytool_list(p12, password)
