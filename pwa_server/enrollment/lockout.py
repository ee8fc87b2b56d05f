"""One counter for the wrong secrets a person can guess at: the one-time password (8 digits)
and the secret answer count toward the same lockout (seed 002: 6 in a row lock the ID). The
download password is throttled instead (throttle.py): its 64 random bits need no lock.

Each guess is counted as in flight before its secret is checked, so that guesses sent at the
same time can never check more secrets than the limit allows, and a lock is never lifted by a
late success. A guess in flight holds a short lease: if its verdict never comes (the worker
died mid-check), it stops counting when the lease runs out. A right secret resets the count.

A wrong secret is recorded in the audit log (the action the caller names) in the transaction
that settles the guess, together with the lock it may cause; a right one is recorded by the
caller with the step it takes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine

from pwa_server.audit import AuditAction, Outcome
from pwa_server.enrollment.audit_trail import record_enrollment_event
from pwa_server.enrollment.errors import (
    EnrollmentCancelledError,
    EnrollmentLockedError,
    TooManyAttemptsAtOnceError,
    WrongSecretError,
    WrongStepError,
)
from pwa_server.sites.webhooks import EventType, enqueue_event
from pwa_server.store.enrollments import (
    count_wrong_guess,
    enrollment_by_id,
    guess_settled,
    reserve_attempt,
    update_enrollment,
)
from pwa_server.vocabulary import EnrollmentStatus

# Far longer than any check takes (an Argon2id slot is waited for at most seconds).
GUESS_LEASE = dt.timedelta(seconds=30)


def reserve_guess(
    engine: Engine,
    enrollment_id: str,
    *,
    statuses: tuple[str, ...],
    limit: int,
    now: dt.datetime,
) -> None:
    """Count one guess as in flight, or raise why none may be checked now."""
    with engine.begin() as connection:
        reserved = reserve_attempt(
            connection, enrollment_id, statuses=statuses, limit=limit, now=now, lease=GUESS_LEASE
        )
    if reserved:
        return
    with engine.connect() as connection:
        row = enrollment_by_id(connection, enrollment_id)
    if row is None or row.status == EnrollmentStatus.LOCKED:
        raise EnrollmentLockedError(enrollment_id)
    if row.status == EnrollmentStatus.CANCELLED:
        raise EnrollmentCancelledError(enrollment_id)
    if row.status not in statuses:
        raise WrongStepError(f"enrollment {enrollment_id} is {row.status}")
    # Every allowed guess is taken by requests still being checked (a right secret sent
    # many times at once, say): not a reason to lock, but none may be checked now.
    raise TooManyAttemptsAtOnceError(enrollment_id)


def check_guess(
    engine: Engine,
    enrollment_id: str,
    *,
    statuses: tuple[str, ...],
    limit: int,
    now: dt.datetime,
    matches: Callable[[], bool],
    failure: AuditAction,
) -> None:
    """Count one guess, then run `matches`; raise unless it matched (recording `failure`).

    On success the caller's own conditional update resets the counter and ends the guess
    (`guess_settled()`) together with the step it takes, and must treat a failed update as
    a lock.
    """
    reserve_guess(engine, enrollment_id, statuses=statuses, limit=limit, now=now)
    try:
        matched = matches()
    except BaseException:
        # No verdict (the token failed, the Argon2id slots were busy): it stops counting now.
        with engine.begin() as connection:
            update_enrollment(connection, enrollment_id, **guess_settled())
        raise
    if matched:
        return
    with engine.begin() as connection:
        row, locked_now = count_wrong_guess(connection, enrollment_id, limit=limit, now=now)
        if locked_now:
            enqueue_event(
                connection,
                enrollment_id=enrollment_id,
                event=EventType.ENROLLMENT_LOCKED,
                data={"failed_attempts": limit},
                now=now,
            )
        failed = row.failed_attempts if row is not None else limit
        record_enrollment_event(
            connection,
            failure,
            enrollment_id,
            outcome=Outcome.FAILURE,
            details={"failed_attempts": failed, "limit": limit},
            now=now,
        )
        if locked_now:
            # The user's guess caused the lock, so the lock is recorded as theirs too.
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_LOCKED,
                enrollment_id,
                details={"failed_attempts": failed, "limit": limit, "after": failure.value},
                now=now,
            )
    if row is None or row.status == EnrollmentStatus.LOCKED:
        raise EnrollmentLockedError(enrollment_id)
    raise WrongSecretError(max(limit - row.failed_attempts, 0))
