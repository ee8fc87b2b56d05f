"""Where an enrollment stands, and the checks every step shares."""

from __future__ import annotations

import datetime as dt
from typing import NoReturn

from sqlalchemy import Connection

from pwa_server.enrollment.errors import (
    EnrollmentCancelledError,
    EnrollmentExpiredError,
    EnrollmentLockedError,
    WrongStepError,
)
from pwa_server.store.enrollments import EnrollmentRow, enrollment_by_id

# Where the one-time password is asked: before and right after its first use.
OTP_STEPS = ("invited", "otp_verified")
# Where a reissue may start: after the secret answer was registered.
REISSUABLE = ("secret_registered", "downloaded", "installed")


def check_open(row: EnrollmentRow, now: dt.datetime) -> None:
    """Raise unless the enrollment can still be used at `now`."""
    if row.status == "locked":
        raise EnrollmentLockedError(row.id)
    if row.status == "cancelled":
        raise EnrollmentCancelledError(row.id)
    if row.status in OTP_STEPS and now >= row.expires_at:
        raise EnrollmentExpiredError(row.id)


def raise_for(connection: Connection, enrollment_id: str) -> NoReturn:
    """A step's conditional update failed: say why (locked by a concurrent guess, or done)."""
    latest = enrollment_by_id(connection, enrollment_id)
    if latest is not None and latest.status == "locked":
        raise EnrollmentLockedError(enrollment_id)
    raise WrongStepError("this step was already taken")


def resumed_status(row: EnrollmentRow) -> str:
    """Where a locked enrollment stood before it was locked."""
    if row.installed_at is not None:
        return "installed"
    if row.downloads > 0:
        return "downloaded"
    if row.download_password_hash is not None:
        return "secret_registered"
    if row.otp_verified_at is not None:
        return "otp_verified"
    return "invited"
