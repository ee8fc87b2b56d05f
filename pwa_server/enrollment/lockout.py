"""One counter for every wrong secret of an enrollment: one-time password, download password
and secret answer all count toward the same lockout (seed 002: 6 in a row lock the ID)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from pwa_server.enrollment.errors import EnrollmentLockedError, WrongSecretError
from pwa_server.store.enrollments import record_failure


def count_wrong_secret(
    engine: Engine, enrollment_id: str, *, limit: int, now: dt.datetime
) -> EnrollmentLockedError | WrongSecretError:
    """Record a wrong secret (committed at once) and return the error to raise."""
    with engine.begin() as connection:
        failures = record_failure(connection, enrollment_id, limit=limit, now=now)
    if failures >= limit:
        return EnrollmentLockedError(enrollment_id)
    return WrongSecretError(limit - failures)
