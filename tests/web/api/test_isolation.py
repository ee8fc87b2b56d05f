"""One site never sees nor touches another's enrollments and certificates: to site B, site A's
look exactly like ones that do not exist."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509

from pwa_server.runtime import Services
from tests.web.api.conftest import (
    Site,
    SiteFactory,
    invitation_for,
    issue_certificate,
    problem_of,
    serial_of,
    without_instance,
)

ACTIONS = ("reissue", "unlock", "cancel")


@dataclass(frozen=True)
class TwoSites:
    """Site A with an invitation and an installed certificate of its user; site B beside it."""

    a: Site
    b: Site
    invited: dict[str, Any]
    downloaded: dict[str, Any]
    certificate: x509.Certificate

    @property
    def user_id(self) -> str:
        return str(self.downloaded["user_id"])


@pytest.fixture(scope="module")
def two_sites(new_site: SiteFactory, services: Services) -> TwoSites:
    a, b = new_site(), new_site()
    invited = a.api.created(invitation_for())
    downloaded = a.api.created(invitation_for())
    certificate = issue_certificate(services, downloaded)
    return TwoSites(a, b, invited, downloaded, certificate)


def _unknown_enrollment_id() -> str:
    return secrets.token_urlsafe(16)


def test_site_b_gets_404_for_site_as_enrollment_like_for_an_unknown_id(
    two_sites: TwoSites,
) -> None:
    b = two_sites.b.api
    foreign = b.get(f"/enrollments/{two_sites.invited['id']}")
    unknown = b.get(f"/enrollments/{_unknown_enrollment_id()}")
    assert without_instance(problem_of(foreign, 404, "not-found")) == without_instance(
        problem_of(unknown, 404, "not-found")
    )


@pytest.mark.parametrize("action", ACTIONS)
def test_site_b_gets_404_for_every_action_on_site_as_enrollment_like_for_an_unknown_id(
    two_sites: TwoSites, action: str
) -> None:
    b = two_sites.b.api
    foreign = b.post(f"/enrollments/{two_sites.invited['id']}/{action}")
    unknown = b.post(f"/enrollments/{_unknown_enrollment_id()}/{action}")
    assert without_instance(problem_of(foreign, 404, "not-found")) == without_instance(
        problem_of(unknown, 404, "not-found")
    )


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_on_an_enrollment_site_a_downloaded_is_404_for_site_b_too(
    two_sites: TwoSites, action: str
) -> None:
    response = two_sites.b.api.post(f"/enrollments/{two_sites.downloaded['id']}/{action}")
    problem_of(response, 404, "not-found")


def test_site_b_lists_no_certificates_for_site_as_user(two_sites: TwoSites) -> None:
    response = two_sites.b.api.get(f"/users/{two_sites.user_id}/certificates")
    assert response.status_code == 200
    assert response.json() == {"certificates": []}


def test_site_a_lists_its_users_certificate(two_sites: TwoSites) -> None:
    response = two_sites.a.api.get(f"/users/{two_sites.user_id}/certificates")
    assert response.status_code == 200
    (listed,) = response.json()["certificates"]
    assert listed["serial"] == serial_of(two_sites.certificate)
    assert listed["status"] == "valid"
    assert listed["enrollment_id"] == two_sites.downloaded["id"]
    assert x509.load_pem_x509_certificate(listed["certificate_pem"].encode()) == (
        two_sites.certificate
    )


def test_site_b_cannot_revoke_site_as_certificate_and_gets_the_unknown_serials_404(
    two_sites: TwoSites,
) -> None:
    b = two_sites.b.api
    reason = {"reason": "keyCompromise"}
    foreign = b.post(f"/certificates/{serial_of(two_sites.certificate)}/revoke", json=reason)
    unknown = b.post(f"/certificates/{secrets.token_hex(16)}/revoke", json=reason)
    assert without_instance(problem_of(foreign, 404, "not-found")) == without_instance(
        problem_of(unknown, 404, "not-found")
    )
    listed = two_sites.a.api.get(f"/users/{two_sites.user_id}/certificates").json()
    assert [c["status"] for c in listed["certificates"]] == ["valid"]


def test_site_as_enrollments_are_unchanged_after_everything_site_b_tried(
    two_sites: TwoSites,
) -> None:
    a, b = two_sites.a.api, two_sites.b.api
    ids = (two_sites.invited["id"], two_sites.downloaded["id"])
    before = {enrollment_id: a.get(f"/enrollments/{enrollment_id}").json() for enrollment_id in ids}
    for enrollment_id in ids:
        b.get(f"/enrollments/{enrollment_id}")
        for action in ACTIONS:
            b.post(f"/enrollments/{enrollment_id}/{action}")
    b.post(f"/certificates/{serial_of(two_sites.certificate)}/revoke", json={})
    after = {enrollment_id: a.get(f"/enrollments/{enrollment_id}").json() for enrollment_id in ids}
    assert after == before
    assert before[two_sites.invited["id"]]["status"] == "invited"
    assert before[two_sites.downloaded["id"]]["status"] == "downloaded"


def test_site_b_revoking_site_as_already_revoked_certificate_still_gets_404_not_409(
    new_site: SiteFactory, services: Services
) -> None:
    a, b = new_site(), new_site()
    certificate = issue_certificate(services, a.api.created(invitation_for()))
    path = f"/certificates/{serial_of(certificate)}/revoke"
    assert a.api.post(path, json={"reason": "keyCompromise"}).status_code == 200
    problem_of(b.api.post(path, json={"reason": "keyCompromise"}), 404, "not-found")


def test_two_sites_with_a_user_of_the_same_id_each_list_only_their_own_certificate(
    new_site: SiteFactory, services: Services
) -> None:
    a, b = new_site(), new_site()
    user_id = f"shared-{secrets.token_hex(4)}"
    mine = issue_certificate(services, a.api.created(invitation_for(user_id)))
    theirs = issue_certificate(services, b.api.created(invitation_for(user_id)))
    for site, certificate in ((a, mine), (b, theirs)):
        listed = site.api.get(f"/users/{user_id}/certificates").json()["certificates"]
        assert [shown["serial"] for shown in listed] == [serial_of(certificate)]
