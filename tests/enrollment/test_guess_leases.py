"""A guess whose verdict never came (its worker died mid-check) stops counting after a short
lease, and an unlock forgets every counter (issue 17, finding 12)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from pwa_server.enrollment.errors import (
    DownloadThrottledError,
    TooManyAttemptsAtOnceError,
    WrongDownloadCredentialsError,
)
from pwa_server.enrollment.lockout import GUESS_LEASE, reserve_guess
from pwa_server.store.tables import guess_throttles
from pwa_server.vocabulary import OTP_STEPS
from tests.enrollment.conftest import START, Enrolling


def _crash_mid_check(enrolling: Enrolling, enrollment_id: str, times: int) -> None:
    """What a worker killed during the check leaves: guesses counted, no verdict."""
    for _ in range(times):
        reserve_guess(
            enrolling.engine,
            enrollment_id,
            statuses=OTP_STEPS,
            limit=enrolling.policy.max_failures,
            now=START,
        )


def test_guesses_left_without_a_verdict_stop_counting_after_the_lease(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    _crash_mid_check(enrolling, invitation.enrollment_id, enrolling.policy.max_failures)
    with pytest.raises(TooManyAttemptsAtOnceError):
        enrolling.service.verify_one_time_password(
            invitation.enrollment_id, invitation.one_time_password, now=START
        )

    later = START + GUESS_LEASE + dt.timedelta(seconds=1)
    row = enrolling.service.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=later
    )

    assert (row.status, row.failed_attempts, row.guesses_in_flight) == ("otp_verified", 0, 0)


def test_unlock_forgets_guesses_in_flight_of_an_enrollment_that_is_not_locked(
    enrolling: Enrolling,
) -> None:
    # It answered "not locked" and left the counted guesses standing.
    invitation = enrolling.invite()
    _crash_mid_check(enrolling, invitation.enrollment_id, enrolling.policy.max_failures)

    unlocked = enrolling.administration.unlock(invitation.enrollment_id, now=START)

    assert (unlocked.status, unlocked.guesses_in_flight) == ("invited", 0)
    row = enrolling.service.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=START
    )
    assert row.status == "otp_verified"


def test_unlock_forgets_the_download_password_waits_of_the_enrollment(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    free = enrolling.policy.download_throttle.free_per_id
    for _ in range(free):
        with pytest.raises(WrongDownloadCredentialsError):
            enrolling.download_from("192.0.2.7", cuid, "wrong-password")
    with pytest.raises(DownloadThrottledError):
        enrolling.download_from("192.0.2.7", cuid, password)

    enrolling.administration.unlock(invitation.enrollment_id, now=START)

    with enrolling.engine.connect() as connection:
        left = connection.execute(
            select(func.count())
            .select_from(guess_throttles)
            .where(guess_throttles.c.key.startswith(f"id:{cuid}@"))
        ).scalar_one()
    assert left == 0
    enrolling.download_from("192.0.2.7", cuid, password)
