"""GET /api/v1/users/{user_id}/certificates and POST /api/v1/certificates/{serial}/revoke, for
the site's own certificates (another site's: see test_isolation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509

from pwa_server.enrollment.download import Platform
from pwa_server.runtime import Services
from tests.web.api.conftest import (
    Site,
    SiteFactory,
    invitation_for,
    issue_certificate,
    problem_of,
    serial_of,
)


@dataclass(frozen=True)
class Issued:
    site: Site
    created: dict[str, Any]
    certificate: x509.Certificate

    @property
    def serial(self) -> str:
        return serial_of(self.certificate)

    def listed(self) -> list[dict[str, Any]]:
        response = self.site.api.get(f"/users/{self.created['user_id']}/certificates")
        assert response.status_code == 200, response.text
        certificates: list[dict[str, Any]] = response.json()["certificates"]
        return certificates


def _issued(site: Site, services: Services) -> Issued:
    created = site.api.created(invitation_for())
    return Issued(site, created, issue_certificate(services, created))


@pytest.fixture
def issued(site: Site, services: Services) -> Issued:
    """A certificate the site's user downloaded, for this test to change."""
    return _issued(site, services)


@pytest.fixture(scope="module")
def untouched(new_site: SiteFactory, services: Services) -> Issued:
    """A certificate the site's user downloaded, that no test of this module revokes."""
    return _issued(new_site(), services)


def test_a_user_without_certificates_lists_none(site: Site) -> None:
    site.api.created(invitation_for("carol"))
    response = site.api.get("/users/carol/certificates")
    assert response.status_code == 200
    assert response.json() == {"certificates": []}


def test_the_listed_certificate_is_the_downloaded_one_and_valid(untouched: Issued) -> None:
    (shown,) = untouched.listed()
    assert shown["serial"] == untouched.serial
    assert shown["status"] == "valid"
    assert shown["revoked_at"] is None
    assert shown["revocation_reason"] is None
    assert shown["certificate_user_id"] == untouched.created["certificate_user_id"]
    assert shown["enrollment_id"] == untouched.created["id"]
    pem = shown["certificate_pem"].encode()
    assert x509.load_pem_x509_certificate(pem) == untouched.certificate


def test_a_user_id_with_a_slash_is_listed_too(site: Site, services: Services) -> None:
    created = site.api.created(invitation_for("dept/alice"))
    certificate = issue_certificate(services, created)
    response = site.api.get("/users/dept/alice/certificates")
    assert [shown["serial"] for shown in response.json()["certificates"]] == [
        serial_of(certificate)
    ]


def test_a_reissued_certificate_is_listed_first_and_the_old_one_revoked_as_superseded(
    issued: Issued, services: Services
) -> None:
    now = services.now()
    reissued = services.enrollments.reissue_with_secret_answer(
        issued.created["certificate_user_id"], "pochi", now=now
    )
    services.downloads.download(
        certificate_user_id=reissued.certificate_user_id,
        download_password=reissued.download_password,
        platform=Platform.ANDROID,
        now=now,
    )
    newest, oldest = issued.listed()
    assert oldest["serial"] == issued.serial
    assert (oldest["status"], oldest["revocation_reason"]) == ("revoked", "superseded")
    assert newest["status"] == "valid"


def test_revoke_answers_200_with_the_certificate_revoked_for_the_reason(
    issued: Issued,
) -> None:
    response = issued.site.api.post(
        f"/certificates/{issued.serial}/revoke", json={"reason": "affiliationChanged"}
    )
    assert response.status_code == 200, response.text
    revoked = response.json()
    assert revoked["serial"] == issued.serial
    assert (revoked["status"], revoked["revocation_reason"]) == ("revoked", "affiliationChanged")
    assert revoked["revoked_at"] is not None
    assert issued.listed() == [revoked]


def test_revoke_without_a_reason_is_unspecified(issued: Issued) -> None:
    response = issued.site.api.post(f"/certificates/{issued.serial}/revoke", json={})
    assert response.status_code == 200, response.text
    assert response.json()["revocation_reason"] == "unspecified"


def test_revoke_accepts_the_serial_in_upper_case_with_leading_zeros(issued: Issued) -> None:
    response = issued.site.api.post(
        f"/certificates/00{issued.serial.upper()}/revoke", json={"reason": "superseded"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["serial"] == issued.serial


@pytest.mark.parametrize("reason", ["certificateHold", "removeFromCRL", "KeyCompromise", ""])
def test_revoke_with_a_reason_outside_rfc_5280s_final_ones_is_422_pointing_at_it(
    untouched: Issued, reason: str
) -> None:
    response = untouched.site.api.post(
        f"/certificates/{untouched.serial}/revoke", json={"reason": reason}
    )
    problem = problem_of(response, 422, "invalid-request")
    assert [error["pointer"] for error in problem["errors"]] == ["/reason"]
    assert untouched.listed()[0]["status"] == "valid"


def test_revoking_twice_is_409_already_revoked(issued: Issued) -> None:
    path = f"/certificates/{issued.serial}/revoke"
    issued.site.api.post(path, json={"reason": "keyCompromise"})
    response = issued.site.api.post(path, json={"reason": "superseded"})
    problem_of(response, 409, "already-revoked")
    assert issued.listed()[0]["revocation_reason"] == "keyCompromise"


def test_revoking_an_unknown_serial_is_404(site: Site) -> None:
    response = site.api.post("/certificates/abcdef0123456789/revoke", json={})
    problem_of(response, 404, "not-found")
