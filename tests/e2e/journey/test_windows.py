"""Time limits: an expired enrollment link, and a download window closed by the number of
downloads, by the invitation's 30 days, or by the 3 days after the first download."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from tests.e2e.journey.conftest import JourneyServer
from tests.e2e.journey.flow import (
    PIXEL,
    Invitation,
    Phone,
    assert_person_page,
    certificates_of,
    change_enrollment,
    enrollment_row,
    heading,
)

CLOSED_TITLE = "The download period is over"
REISSUE_TEXT = "The certificate must be reissued"


def test_expired_enrollment_link_shows_an_expired_page(
    journey_server: JourneyServer, invitation: Invitation, database: Engine
) -> None:
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    change_enrollment(database, invitation.enrollment_id, expires_at=yesterday)
    with Phone(journey_server, language="en") as phone:
        opened = phone.get(invitation.enrollment_url)
        typed = phone.submit_one_time_password(invitation, invitation.one_time_password)
    for response in (opened, typed):
        assert response.status_code == 410
        assert_person_page(response)
        assert heading(response.text) == "This enrollment link has expired"
        assert "Ask the person who invited you to send a new invitation." in response.text
    assert enrollment_row(database, invitation.enrollment_id)["otp_verified_at"] is None


def test_a_second_download_after_the_allowed_one_says_the_certificate_must_be_reissued(
    journey_server: JourneyServer, invitation: Invitation, database: Engine
) -> None:
    with Phone(journey_server, language="en", user_agent=PIXEL) as phone:
        credentials = phone.enroll(invitation)
        first = phone.download(credentials, "android")
        second = phone.download(credentials, "ios")
    assert first.status_code == 200
    assert second.status_code == 410
    assert_person_page(second)
    assert heading(second.text) == CLOSED_TITLE
    assert REISSUE_TEXT in second.text
    assert len(certificates_of(database, invitation.enrollment_id)) == 1


@pytest.mark.parametrize(
    "closed_by",
    [
        # The invitation's download period (30 days) ran out before any download.
        {"download_deadline": dt.timedelta(days=-1)},
        # The window after the first download (3 days) is over, though a download is left
        # (as under a policy that allows more than one).
        {"first_download_at": dt.timedelta(days=-4)},
    ],
    ids=["download-deadline-passed", "three-days-after-first-download"],
)
def test_download_outside_the_window_says_the_certificate_must_be_reissued(
    journey_server: JourneyServer,
    invitation: Invitation,
    database: Engine,
    closed_by: dict[str, dt.timedelta],
) -> None:
    now = dt.datetime.now(dt.UTC)
    with Phone(journey_server, language="en", user_agent=PIXEL) as phone:
        credentials = phone.enroll(invitation)
        change_enrollment(
            database,
            invitation.enrollment_id,
            **{column: now + offset for column, offset in closed_by.items()},
        )
        response = phone.download(credentials, "android")
    assert response.status_code == 410
    assert_person_page(response)
    assert heading(response.text) == CLOSED_TITLE
    assert REISSUE_TEXT in response.text
    assert certificates_of(database, invitation.enrollment_id) == []


def test_an_unknown_enrollment_link_gets_a_clear_page(journey_server: JourneyServer) -> None:
    with Phone(journey_server, language="en") as phone:
        response = phone.get("/enroll/NoSuchEnrollment0000")
    assert response.status_code == 404
    assert_person_page(response)
    assert heading(response.text) == "This enrollment link is not valid"
