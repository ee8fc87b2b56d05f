"""A relying site revokes a certificate through the API of a real server, and openssl, a
checker nobody here wrote, sees it at once in OCSP and in the CRL.

The story runs once (module scope), in the order a site lives it: the site invites a user
over HTTPS, the user walks the journey on an Android phone and downloads the PKCS#12, OCSP
says good, the site revokes with keyCompromise, then OCSP, the CRL, openssl verify and the
API all say revoked. Each test states one thing about what was recorded.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from pwa_server.runtime import site_registry
from pwa_server.store.database import create_database_engine
from testbed.serving import ShomeiServer, instance_settings
from tests.conftest import openssl, run_tool
from tests.e2e.journey.flow import PIXEL, Identity, Invitation, Phone, open_pkcs12
from tests.web.api.conftest import Contract

USER_ID = "employee-0042"
EMAIL = "employee-0042@example.jp"


@dataclass(frozen=True)
class Instance:
    """A server of this module's own, and the API key of a site registered in its database."""

    server: ShomeiServer
    api_key: str
    directory: Path

    @property
    def pki_url(self) -> str:
        return f"http://127.0.0.1:{self.server.settings.http_port}/pki"

    def api(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        """A call to /api/v1 over HTTPS with the site's key."""
        return client.request(
            method,
            f"{self.server.base_url}/api/v1{path}",
            headers={"authorization": f"Bearer {self.api_key}", **(headers or {})},
            **options,
        )


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """`shomei init` in a fresh data directory, a site registered in its database, served."""
    root = tmp_path_factory.mktemp("api-revocation")
    settings = instance_settings(root / "var")
    server = ShomeiServer(settings, root / "serve.log")
    initialised = run_tool(
        sys.executable, "-m", "pwa_server.cli", "init", env=server.environment, timeout=120
    )
    assert initialised.returncode == 0, initialised.stdout + initialised.stderr
    engine = create_database_engine(settings.effective_database_url)
    try:
        site = site_registry(settings, engine).create(
            name="relying",
            display_name="Relying site",
            return_urls=("https://relying.example/back",),
            webhook_url=None,
            now=dt.datetime.now(dt.UTC),
        )
    finally:
        engine.dispose()
    server.start()
    yield Instance(server, site.api_key, root)
    server.stop()


@dataclass(frozen=True)
class Story:
    """What the site, the phone and openssl saw, in order."""

    created: httpx.Response
    identity: Identity
    certificate: x509.Certificate
    ocsp_before: str
    revoked: httpx.Response
    ocsp_after: str
    crl_response: httpx.Response
    crl_der: Path
    crl_verified: str
    crl_text: str
    verified: str
    verify_code: int
    revoked_again: httpx.Response
    listed: httpx.Response
    document: dict[str, Any]

    @property
    def api_answers(self) -> list[httpx.Response]:
        return [self.created, self.revoked, self.revoked_again, self.listed]

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")

    @property
    def enrollment(self) -> dict[str, Any]:
        created: dict[str, Any] = self.created.json()
        return created


def _ca_files(instance: Instance) -> dict[str, Path]:
    """root.pem, issuing.pem and chain.pem (both), as the server publishes them over HTTP."""
    files = {}
    with httpx.Client(timeout=30) as client:
        for role in ("root", "issuing"):
            response = client.get(f"{instance.pki_url}/{role}.pem")
            assert response.status_code == 200, response.text
            files[role] = instance.directory / f"{role}.pem"
            files[role].write_bytes(response.content)
    files["chain"] = instance.directory / "chain.pem"
    files["chain"].write_bytes(files["root"].read_bytes() + files["issuing"].read_bytes())
    return files


def _openssl_ocsp(instance: Instance, files: dict[str, Path], certificate: Path) -> str:
    """`openssl ocsp` against the server's responder; the response must verify."""
    result = openssl(
        "ocsp",
        "-issuer",
        files["issuing"],
        "-cert",
        certificate,
        "-url",
        f"{instance.pki_url}/ocsp",
        "-CAfile",
        files["root"],
    )
    assert "Response verify OK" in result.stderr, result.stdout + result.stderr
    return result.stdout


def _enrolled_by_api(instance: Instance, client: httpx.Client) -> httpx.Response:
    response = instance.api(
        client,
        "POST",
        "/enrollments",
        json={"user_id": USER_ID, "email": EMAIL, "return_url": "https://relying.example/back"},
        headers={"idempotency-key": "e2e-1"},
    )
    assert response.status_code == 201, response.text
    return response


def _downloaded_on_android(instance: Instance, created: dict[str, Any]) -> Identity:
    """The phone's journey from the enrollment URL to the PKCS#12, opened by openssl."""
    invitation = Invitation(
        enrollment_id=created["id"],
        enrollment_url=created["enrollment_url"],
        one_time_password=created["one_time_password"],
        expires_at=created["expires_at"],
        email=EMAIL,
    )
    with Phone(instance.server, language="en", user_agent=PIXEL) as phone:
        credentials = phone.enroll(invitation)
        download = phone.download(credentials, "android")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/x-pkcs12"
    p12 = instance.directory / "phone.p12"
    p12.write_bytes(download.content)
    return open_pkcs12(p12, credentials.download_password)


@pytest.fixture(scope="module")
def story(instance: Instance) -> Story:
    files = _ca_files(instance)
    with instance.server.client() as client:
        document = client.get(f"{instance.server.base_url}/api/v1/openapi.json").json()
        created = _enrolled_by_api(instance, client)
        identity = _downloaded_on_android(instance, created.json())
        certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
        serial = format(certificate.serial_number, "x")
        ocsp_before = _openssl_ocsp(instance, files, identity.certificate)

        revoked = instance.api(
            client, "POST", f"/certificates/{serial}/revoke", json={"reason": "keyCompromise"}
        )
        ocsp_after = _openssl_ocsp(instance, files, identity.certificate)

        with httpx.Client(timeout=30) as plain:
            crl_response = plain.get(f"{instance.pki_url}/issuing.crl")
        crl_der = instance.directory / "issuing.crl"
        crl_der.write_bytes(crl_response.content)
        crl_pem = instance.directory / "issuing.crl.pem"
        converted = openssl("crl", "-inform", "DER", "-in", crl_der, "-out", crl_pem)
        assert converted.returncode == 0, converted.stderr
        crl_verified = openssl(
            "crl", "-inform", "DER", "-in", crl_der, "-CAfile", files["chain"], "-noout", "-verify"
        )
        crl_text = openssl("crl", "-inform", "DER", "-in", crl_der, "-noout", "-text")
        verified = openssl(
            "verify",
            "-crl_check",
            "-CAfile",
            files["chain"],
            "-CRLfile",
            crl_pem,
            identity.certificate,
        )

        revoked_again = instance.api(
            client, "POST", f"/certificates/{serial}/revoke", json={"reason": "keyCompromise"}
        )
        listed = instance.api(client, "GET", f"/users/{USER_ID}/certificates")
    return Story(
        created=created,
        identity=identity,
        certificate=certificate,
        ocsp_before=ocsp_before,
        revoked=revoked,
        ocsp_after=ocsp_after,
        crl_response=crl_response,
        crl_der=crl_der,
        crl_verified=crl_verified.stdout + crl_verified.stderr,
        crl_text=crl_text.stdout,
        verified=verified.stdout + verified.stderr,
        verify_code=verified.returncode,
        revoked_again=revoked_again,
        listed=listed,
        document=document,
    )


def test_the_certificate_from_the_api_enrollment_is_the_users(story: Story) -> None:
    common_name = story.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0]
    assert common_name.value == story.enrollment["certificate_user_id"]


def test_openssl_ocsp_reports_the_downloaded_certificate_good(story: Story) -> None:
    assert f"{story.identity.certificate}: good" in story.ocsp_before


def test_revoking_with_key_compromise_answers_200_with_the_revoked_certificate(
    story: Story,
) -> None:
    assert story.revoked.status_code == 200, story.revoked.text
    revoked = story.revoked.json()
    assert revoked["serial"] == story.serial
    assert revoked["status"] == "revoked"
    assert revoked["revocation_reason"] == "keyCompromise"
    assert revoked["revoked_at"] is not None
    assert revoked["enrollment_id"] == story.enrollment["id"]


def test_openssl_ocsp_then_reports_it_revoked_for_key_compromise(story: Story) -> None:
    assert f"{story.identity.certificate}: revoked" in story.ocsp_after
    assert re.search(r"Reason: keyCompromise", story.ocsp_after), story.ocsp_after


def test_the_crl_over_plain_http_verifies_with_openssl(story: Story) -> None:
    assert story.crl_response.status_code == 200
    assert story.crl_response.headers["content-type"] == "application/pkix-crl"
    assert "verify OK" in story.crl_verified, story.crl_verified


def test_the_crl_lists_the_serial_for_key_compromise(story: Story) -> None:
    listed = re.findall(r"Serial Number: ([0-9A-F]+)", story.crl_text)
    assert story.certificate.serial_number in {int(serial, 16) for serial in listed}
    crl = x509.load_der_x509_crl(story.crl_der.read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(story.certificate.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    assert "Key Compromise" in story.crl_text


def test_openssl_verify_with_the_crl_refuses_the_certificate(story: Story) -> None:
    assert story.verify_code != 0
    assert "certificate revoked" in story.verified, story.verified


def test_revoking_it_again_is_409_already_revoked(story: Story) -> None:
    response = story.revoked_again
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:shomei:problem:already-revoked"


def test_the_users_certificates_show_it_revoked_with_the_reason(story: Story) -> None:
    assert story.listed.status_code == 200, story.listed.text
    (shown,) = story.listed.json()["certificates"]
    assert shown["serial"] == story.serial
    assert shown["status"] == "revoked"
    assert shown["revocation_reason"] == "keyCompromise"
    assert shown["user_id"] == USER_ID
    assert shown["revoked_at"] == story.revoked.json()["revoked_at"]


def test_every_api_answer_of_the_story_is_within_the_servers_openapi_document(
    story: Story,
) -> None:
    contract = Contract(story.document)
    for answer in story.api_answers:
        contract.check(answer)
