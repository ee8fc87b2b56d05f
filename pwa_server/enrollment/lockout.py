"""One counter for every wrong secret of an enrollment: one-time password, download password
and secret answer all count toward the same lockout (seed 002: 6 in a row lock the ID).

Each guess is counted before its secret is checked, so that guesses sent at the same time can
never check more secrets than the limit allows, and a lock is never lifted by a late success.
A right secret resets the count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine

from pwa_server.enrollment.errors import (
    EnrollmentCancelledError,
    EnrollmentLockedError,
    TooManyAttemptsAtOnceError,
    WrongSecretError,
    WrongStepError,
)
from pwa_server.store.enrollments import (
    enrollment_by_id,
    lock_when_exhausted,
    reserve_attempt,
)


def check_guess(
    engine: Engine,
    enrollment_id: str,
    *,
    statuses: tuple[str, ...],
    limit: int,
    now: dt.datetime,
    matches: Callable[[], bool],
) -> None:
    """Count one guess, then run `matches`; raise unless it matched.

    On success the caller's own conditional update resets the counter together with the
    step it takes, and must treat a failed update as a lock.
    """
    with engine.begin() as connection:
        reserved = reserve_attempt(
            connection, enrollment_id, statuses=statuses, limit=limit, now=now
        )
    if not reserved:
        with engine.connect() as connection:
            row = enrollment_by_id(connection, enrollment_id)
        if row is None or row.status == "locked":
            raise EnrollmentLockedError(enrollment_id)
        if row.status == "cancelled":
            raise EnrollmentCancelledError(enrollment_id)
        if row.status not in statuses:
            raise WrongStepError(f"enrollment {enrollment_id} is {row.status}")
        # Every allowed guess is taken by requests still being checked (a right secret sent
        # many times at once, say): not a reason to lock, but none may be checked now.
        raise TooManyAttemptsAtOnceError(enrollment_id)
    if matches():
        return
    with engine.begin() as connection:
        row = lock_when_exhausted(connection, enrollment_id, limit=limit, now=now)
    if row is None or row.status == "locked":
        raise EnrollmentLockedError(enrollment_id)
    raise WrongSecretError(max(limit - row.failed_attempts, 0))
