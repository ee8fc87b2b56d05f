"""POST /api/v1/enrollments/{id}/{reissue,unlock,cancel}: each allowed only in the states
where it means something; otherwise 409 and the enrollment is left as it was."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from starlette.testclient import TestClient

from pwa_server.enrollment.errors import (
    EnrollmentCancelledError,
    EnrollmentLockedError,
    WrongSecretError,
)
from pwa_server.runtime import Services
from tests.web.api.conftest import (
    Site,
    enrollment_path,
    invitation_for,
    issue_certificate,
    mails_to,
    problem_of,
)


def _lock(services: Services, created: dict[str, Any]) -> None:
    """Wrong one-time passwords until the enrollment locks."""
    for _ in range(services.enrollments.policy.max_failures - 1):
        with pytest.raises(WrongSecretError):
            services.enrollments.verify_one_time_password(
                created["id"], "00000000", now=services.now()
            )
    with pytest.raises(EnrollmentLockedError):
        services.enrollments.verify_one_time_password(created["id"], "00000000", now=services.now())


# --- unlock -------------------------------------------------------------------------------


def test_unlock_of_an_enrollment_that_is_not_locked_is_409(site: Site) -> None:
    created = site.api.created(invitation_for())
    response = site.api.post(f"/enrollments/{created['id']}/unlock")
    problem_of(response, 409, "wrong-state")
    assert site.api.get(f"/enrollments/{created['id']}").json()["status"] == "invited"


def test_a_locked_enrollment_shows_locked(site: Site, services: Services) -> None:
    created = site.api.created(invitation_for())
    _lock(services, created)
    shown = site.api.get(f"/enrollments/{created['id']}").json()
    assert shown["status"] == "locked"
    assert shown["locked_at"] is not None


def test_unlock_of_a_locked_enrollment_resumes_it_and_the_password_works_again(
    site: Site, services: Services
) -> None:
    created = site.api.created(invitation_for())
    _lock(services, created)
    response = site.api.post(f"/enrollments/{created['id']}/unlock")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "invited"
    assert response.json()["locked_at"] is None
    row = services.enrollments.verify_one_time_password(
        created["id"], created["one_time_password"], now=services.now()
    )
    assert row.status == "otp_verified"


# --- cancel -------------------------------------------------------------------------------


def test_cancel_answers_the_cancelled_enrollment_and_get_then_shows_cancelled(
    site: Site,
) -> None:
    created = site.api.created(invitation_for())
    cancelled = site.api.post(f"/enrollments/{created['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert site.api.get(f"/enrollments/{created['id']}").json()["status"] == "cancelled"


def test_a_cancelled_enrollments_url_is_refused_to_the_user(site: Site, http: TestClient) -> None:
    created = site.api.created(invitation_for())
    site.api.post(f"/enrollments/{created['id']}/cancel")
    page = http.get(enrollment_path(created), headers={"accept": "text/html"})
    assert page.status_code == 410
    assert page.headers["content-type"].startswith("text/html")


def test_a_cancelled_enrollments_one_time_password_no_longer_works(
    site: Site, services: Services
) -> None:
    created = site.api.created(invitation_for())
    site.api.post(f"/enrollments/{created['id']}/cancel")
    with pytest.raises(EnrollmentCancelledError):
        services.enrollments.verify_one_time_password(
            created["id"], created["one_time_password"], now=services.now()
        )


def test_cancelling_twice_is_409(site: Site) -> None:
    created = site.api.created(invitation_for())
    site.api.post(f"/enrollments/{created['id']}/cancel")
    problem_of(site.api.post(f"/enrollments/{created['id']}/cancel"), 409, "wrong-state")


# --- reissue ------------------------------------------------------------------------------


def test_reissue_of_an_invitation_not_yet_taken_to_a_download_is_409(site: Site) -> None:
    created = site.api.created(invitation_for())
    response = site.api.post(f"/enrollments/{created['id']}/reissue")
    problem_of(response, 409, "wrong-state")
    assert site.api.get(f"/enrollments/{created['id']}").json()["status"] == "invited"


def test_reissue_after_a_download_opens_a_new_window_and_mails_the_guide_again(
    site: Site, services: Services
) -> None:
    body = invitation_for()
    created = site.api.created(body)
    issue_certificate(services, created)
    before = site.api.get(f"/enrollments/{created['id']}").json()
    guides_before = len(mails_to(services.engine, body["email"]))
    response = site.api.post(f"/enrollments/{created['id']}/reissue")
    assert response.status_code == 200, response.text
    assert before["status"] == "downloaded"
    assert response.json()["status"] == "secret_registered"
    deadline = dt.datetime.fromisoformat(response.json()["download_deadline"])
    assert deadline >= dt.datetime.fromisoformat(before["download_deadline"])
    assert len(mails_to(services.engine, body["email"])) == guides_before + 1


def test_actions_on_a_cancelled_enrollment_are_409(site: Site) -> None:
    created = site.api.created(invitation_for())
    site.api.post(f"/enrollments/{created['id']}/cancel")
    for action in ("reissue", "unlock"):
        problem_of(site.api.post(f"/enrollments/{created['id']}/{action}"), 409, "wrong-state")
