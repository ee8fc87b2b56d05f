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
from pwa_server.vocabulary import OTP_STEPS, EnrollmentStatus


def check_open(row: EnrollmentRow, now: dt.datetime) -> None:
    """Raise unless the enrollment can still be used at `now`."""
    if row.status == EnrollmentStatus.LOCKED:
        raise EnrollmentLockedError(row.id)
    if row.status == EnrollmentStatus.CANCELLED:
        raise EnrollmentCancelledError(row.id)
    if row.status in OTP_STEPS and now >= row.expires_at:
        raise EnrollmentExpiredError(row.id)


def raise_for(connection: Connection, enrollment_id: str) -> NoReturn:
    """A step's conditional update failed: say why (locked by a concurrent guess, or done)."""
    latest = enrollment_by_id(connection, enrollment_id)
    if latest is not None and latest.status == EnrollmentStatus.LOCKED:
        raise EnrollmentLockedError(enrollment_id)
    raise WrongStepError("this step was already taken")


def resumed_status(row: EnrollmentRow) -> EnrollmentStatus:
    """Where a locked enrollment stood before it was locked."""
    if row.installed_at is not None:
        return EnrollmentStatus.INSTALLED
    if row.downloads > 0:
        return EnrollmentStatus.DOWNLOADED
    if row.download_password_hash is not None:
        return EnrollmentStatus.SECRET_REGISTERED
    if row.otp_verified_at is not None:
        return EnrollmentStatus.OTP_VERIFIED
    return EnrollmentStatus.INVITED
