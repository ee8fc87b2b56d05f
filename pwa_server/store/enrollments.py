"""Rows of enrollments. Counters change only through conditional UPDATEs, so that concurrent
requests in any number of processes can never pass a limit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, insert, literal, or_, select, update

from pwa_server.store.search import contains_any
from pwa_server.store.tables import enrollments
from pwa_server.vocabulary import REISSUABLE, EnrollmentStatus, KeyProfile


@dataclass(frozen=True)
class EnrollmentRow:
    """An enrollment as stored."""

    id: str
    user_id: str
    email: str
    display_name: str | None
    profile: KeyProfile
    certificate_user_id: str
    status: EnrollmentStatus
    one_time_password_hash: str
    failed_attempts: int
    locked_at: dt.datetime | None
    expires_at: dt.datetime
    created_at: dt.datetime
    otp_verified_at: dt.datetime | None
    secret_question: str | None
    secret_answer_hash: str | None
    download_password_hash: str | None
    download_password_issued_at: dt.datetime | None
    downloads: int
    first_download_at: dt.datetime | None
    download_deadline: dt.datetime | None
    installed_at: dt.datetime | None
    updated_at: dt.datetime
    site_id: int | None = None
    return_url: str | None = None
    keep_previous_certificate: bool = False
    issuance_notice_at: dt.datetime | None = None
    guesses_in_flight: int = 0
    guess_lease_until: dt.datetime | None = None


def insert_enrollment(connection: Connection, **values: Any) -> None:
    """Record a new invitation."""
    connection.execute(
        insert(enrollments).values(failed_attempts=0, downloads=0, guesses_in_flight=0, **values)
    )


def enrollment_by_id(connection: Connection, enrollment_id: str) -> EnrollmentRow | None:
    row = connection.execute(
        select(enrollments).where(enrollments.c.id == enrollment_id)
    ).one_or_none()
    return EnrollmentRow(**row._mapping) if row is not None else None


def enrollment_by_certificate_user_id(
    connection: Connection, certificate_user_id: str
) -> EnrollmentRow | None:
    row = connection.execute(
        select(enrollments).where(enrollments.c.certificate_user_id == certificate_user_id)
    ).one_or_none()
    return EnrollmentRow(**row._mapping) if row is not None else None


def update_enrollment(
    connection: Connection, enrollment_id: str, *, expected_status: str | None = None, **values: Any
) -> bool:
    """Change fields; with `expected_status`, only if the status is still that (else False)."""
    condition = enrollments.c.id == enrollment_id
    if expected_status is not None:
        condition = and_(condition, enrollments.c.status == expected_status)
    result = connection.execute(update(enrollments).where(condition).values(**values))
    return result.rowcount == 1


def _active_in_flight(now: dt.datetime) -> ColumnElement[int]:
    """Guesses still being checked: none once their lease ran out."""
    lease = enrollments.c.guess_lease_until
    return case(
        (or_(lease.is_(None), lease <= now), literal(0)), else_=enrollments.c.guesses_in_flight
    )


def reserve_attempt(
    connection: Connection,
    enrollment_id: str,
    *,
    statuses: tuple[str, ...],
    limit: int,
    now: dt.datetime,
    lease: dt.timedelta,
) -> bool:
    """Count a guess as in flight before it is checked; False when no guess is left (or the
    step is wrong).

    Counting first means that concurrent guesses can never check more than `limit` secrets;
    the lease means that a guess whose verdict never comes (its worker died) stops counting.
    """
    in_flight = _active_in_flight(now)
    result = connection.execute(
        update(enrollments)
        .where(
            enrollments.c.id == enrollment_id,
            enrollments.c.status.in_(statuses),
            enrollments.c.failed_attempts + in_flight < limit,
        )
        .values(guesses_in_flight=in_flight + 1, guess_lease_until=now + lease, updated_at=now)
    )
    return result.rowcount == 1


def guess_settled() -> dict[str, Any]:
    """Values that end one guess in flight, for the UPDATE that records its verdict."""
    in_flight = enrollments.c.guesses_in_flight
    return {"guesses_in_flight": case((in_flight > 0, in_flight - 1), else_=literal(0))}


def count_wrong_guess(
    connection: Connection, enrollment_id: str, *, limit: int, now: dt.datetime
) -> tuple[EnrollmentRow | None, bool]:
    """A wrong guess's verdict: counted, and the enrollment locked once the wrong guesses
    reach `limit`. Returns the row as it is now, and whether this call locked it."""
    connection.execute(
        update(enrollments)
        .where(enrollments.c.id == enrollment_id)
        .values(
            failed_attempts=enrollments.c.failed_attempts + 1, updated_at=now, **guess_settled()
        )
    )
    result = connection.execute(
        update(enrollments)
        .where(
            enrollments.c.id == enrollment_id,
            enrollments.c.failed_attempts >= limit,
            enrollments.c.status != EnrollmentStatus.LOCKED,
        )
        .values(status=EnrollmentStatus.LOCKED, locked_at=now, updated_at=now)
    )
    return enrollment_by_id(connection, enrollment_id), result.rowcount == 1


def claim_download(
    connection: Connection,
    enrollment_id: str,
    *,
    allowed: int,
    window: dt.timedelta,
    now: dt.datetime,
) -> bool:
    """Take one download slot if the window is open; False when it is closed (or taken).

    The first download of a certificate moves the enrollment to "downloaded" (in the same
    statement: one fewer per download)."""
    table = enrollments
    result = connection.execute(
        update(table)
        .where(
            table.c.id == enrollment_id,
            table.c.status.in_(REISSUABLE),
            table.c.downloads < allowed,
            table.c.download_deadline > now,
            or_(table.c.first_download_at.is_(None), table.c.first_download_at > now - window),
        )
        .values(
            downloads=table.c.downloads + 1,
            first_download_at=case(
                (table.c.first_download_at.is_(None), now), else_=table.c.first_download_at
            ),
            status=case(
                (table.c.status == EnrollmentStatus.SECRET_REGISTERED, EnrollmentStatus.DOWNLOADED),
                else_=table.c.status,
            ),
            updated_at=now,
        )
    )
    return result.rowcount == 1


def search_enrollments(
    connection: Connection,
    *,
    status: EnrollmentStatus | None = None,
    text: str | None = None,
    limit: int = 100,
) -> list[EnrollmentRow]:
    """Enrollments for the console, newest first: by status, and by a user id, e-mail address
    or certificate user ID that contains `text` (case-insensitive)."""
    query = select(enrollments).order_by(enrollments.c.created_at.desc()).limit(limit)
    if status:
        query = query.where(enrollments.c.status == status)
    if text:
        query = query.where(
            contains_any(
                text,
                enrollments.c.user_id,
                enrollments.c.email,
                enrollments.c.certificate_user_id,
            )
        )
    return [EnrollmentRow(**row._mapping) for row in connection.execute(query)]
