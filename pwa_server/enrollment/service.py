"""Invitation, one-time password, secret question, lockout, unlock and self-service reissue."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import Connection, Engine

from pwa_server.enrollment import credentials
from pwa_server.enrollment.errors import (
    EnrollmentCancelledError,
    EnrollmentExpiredError,
    EnrollmentLockedError,
    EnrollmentNotFoundError,
    InvalidInputError,
    WrongStepError,
)
from pwa_server.enrollment.lockout import check_guess
from pwa_server.enrollment.mails import EnrollmentMails
from pwa_server.enrollment.policy import MAX_ANSWER_LENGTH, SECRET_QUESTIONS, EnrollmentPolicy
from pwa_server.notify.outbox import enqueue_mail
from pwa_server.store.enrollments import (
    EnrollmentRow,
    enrollment_by_certificate_user_id,
    enrollment_by_id,
    insert_enrollment,
    update_enrollment,
)

# Where the one-time password is asked: before and right after its first use.
_OTP_STEPS = ("invited", "otp_verified")
# Where a self-service reissue may start: after the secret answer was registered.
_REISSUABLE = ("secret_registered", "downloaded", "installed")


@dataclass(frozen=True)
class Invitation:
    """A new enrollment: the URL for the user, and the one-time password, shown once."""

    enrollment_id: str
    enrollment_url: str
    one_time_password: str
    expires_at: dt.datetime
    certificate_user_id: str


@dataclass(frozen=True)
class DownloadCredentials:
    """What the user must note: the certificate user ID and the download password (once)."""

    certificate_user_id: str
    download_password: str
    deadline: dt.datetime


class EnrollmentService:
    """The enrollment state machine over the database; every method takes the time as `now`."""

    def __init__(
        self, engine: Engine, policy: EnrollmentPolicy, mails: EnrollmentMails, public_url: str
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.mails = mails
        self.public_url = public_url

    def create(
        self,
        *,
        user_id: str,
        email: str,
        display_name: str | None = None,
        profile: str = "default",
        now: dt.datetime,
    ) -> Invitation:
        """Create an invitation and queue its mail (the URL only, never the password)."""
        if not user_id.strip() or len(user_id) > 255:
            raise InvalidInputError("user_id", "required, at most 255 characters")
        if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
            raise InvalidInputError("email", "not an e-mail address")
        enrollment_id = secrets.token_urlsafe(16)
        one_time_password = credentials.new_one_time_password()
        expires_at = now + self.policy.expiry
        invitation = Invitation(
            enrollment_id=enrollment_id,
            enrollment_url=f"{self.public_url}/enroll/{enrollment_id}",
            one_time_password=one_time_password,
            expires_at=expires_at,
            certificate_user_id=credentials.new_certificate_user_id(),
        )
        with self.engine.begin() as connection:
            insert_enrollment(
                connection,
                id=enrollment_id,
                user_id=user_id.strip(),
                email=email,
                display_name=display_name,
                profile=profile,
                certificate_user_id=invitation.certificate_user_id,
                status="invited",
                one_time_password_hash=credentials.hash_secret(one_time_password),
                expires_at=expires_at,
                created_at=now,
                download_deadline=now + self.policy.download_period,
                updated_at=now,
            )
            message = self.mails.invitation(
                to=email, enrollment_url=invitation.enrollment_url, expires_at=expires_at
            )
            enqueue_mail(connection, message, now=now)
        return invitation

    def current(self, enrollment_id: str, *, now: dt.datetime) -> EnrollmentRow:
        """The enrollment behind an enrollment URL, if it can still be used."""
        with self.engine.connect() as connection:
            row = enrollment_by_id(connection, enrollment_id)
        if row is None:
            raise EnrollmentNotFoundError(enrollment_id)
        self._check_open(row, now)
        return row

    def _check_open(self, row: EnrollmentRow, now: dt.datetime) -> None:
        if row.status == "locked":
            raise EnrollmentLockedError(row.id)
        if row.status == "cancelled":
            raise EnrollmentCancelledError(row.id)
        if row.status in ("invited", "otp_verified") and now >= row.expires_at:
            raise EnrollmentExpiredError(row.id)

    def verify_one_time_password(
        self, enrollment_id: str, one_time_password: str, *, now: dt.datetime
    ) -> EnrollmentRow:
        """Step 2: the one-time password; wrong ones count toward the lockout.

        Also accepted again after it was verified, until the secret question is registered:
        a person whose browser session ended must be able to continue.
        """
        row = self.current(enrollment_id, now=now)
        if row.status not in _OTP_STEPS:
            raise WrongStepError("the one-time password was already used")
        typed = credentials.normalise_typed(one_time_password)
        check_guess(
            self.engine,
            row.id,
            statuses=_OTP_STEPS,
            limit=self.policy.max_failures,
            now=now,
            matches=lambda: credentials.verify_secret(row.one_time_password_hash, typed),
        )
        with self.engine.begin() as connection:
            if not update_enrollment(
                connection,
                row.id,
                expected_status=row.status,
                status="otp_verified",
                otp_verified_at=now,
                failed_attempts=0,
                updated_at=now,
            ):
                self._raise_for(connection, row.id)
        return self.current(enrollment_id, now=now)

    @staticmethod
    def _raise_for(connection: Connection, enrollment_id: str) -> NoReturn:
        """A step's conditional update failed: say why (locked by a concurrent guess, or done)."""
        latest = enrollment_by_id(connection, enrollment_id)
        if latest is not None and latest.status == "locked":
            raise EnrollmentLockedError(enrollment_id)
        raise WrongStepError("this step was already taken")

    def register_secret(
        self,
        enrollment_id: str,
        *,
        question: str,
        answer: str,
        answer_confirm: str,
        now: dt.datetime,
    ) -> DownloadCredentials:
        """Steps 3 and 4: store the secret answer's hash, make the download password."""
        row = self.current(enrollment_id, now=now)
        if row.status != "otp_verified":
            raise WrongStepError("the secret question is registered after the one-time password")
        answer_text = _validated_answer(question, answer, answer_confirm)
        download_password = credentials.new_download_password()
        with self.engine.begin() as connection:
            if not update_enrollment(
                connection,
                row.id,
                expected_status="otp_verified",
                status="secret_registered",
                secret_question=question,
                secret_answer_hash=credentials.hash_secret(answer_text),
                download_password_hash=credentials.hash_secret(download_password),
                download_password_issued_at=now,
                updated_at=now,
            ):
                raise WrongStepError("the secret question was already registered")
            enqueue_mail(
                connection,
                self.mails.download_guide(
                    to=row.email,
                    certificate_user_id=row.certificate_user_id,
                    deadline=row.download_deadline or now,
                ),
                now=now,
            )
        return DownloadCredentials(
            row.certificate_user_id, download_password, row.download_deadline or now
        )

    def reissue_with_secret_answer(
        self, certificate_user_id: str, answer: str, *, now: dt.datetime
    ) -> DownloadCredentials:
        """Seed 003's self-service: the secret answer gives a new password and window.

        The old certificate stays valid until the new one is downloaded, then it is revoked
        as superseded.
        """
        with self.engine.connect() as connection:
            row = enrollment_by_certificate_user_id(
                connection, credentials.normalise_identifier(certificate_user_id)
            )
        if row is None or row.secret_answer_hash is None:
            raise EnrollmentNotFoundError(certificate_user_id)
        self._check_open(row, now)
        stored_answer = row.secret_answer_hash
        check_guess(
            self.engine,
            row.id,
            statuses=_REISSUABLE,
            limit=self.policy.max_failures,
            now=now,
            matches=lambda: credentials.verify_secret(
                stored_answer, credentials.normalise_answer(answer)
            ),
        )
        download_password = credentials.new_download_password()
        deadline = now + self.policy.download_period
        with self.engine.begin() as connection:
            # Conditional on the status read before the guess: a lock set meanwhile stands.
            if not update_enrollment(
                connection,
                row.id,
                expected_status=row.status,
                status="secret_registered",
                download_password_hash=credentials.hash_secret(download_password),
                download_password_issued_at=now,
                downloads=0,
                first_download_at=None,
                download_deadline=deadline,
                installed_at=None,
                failed_attempts=0,
                updated_at=now,
            ):
                self._raise_for(connection, row.id)
            enqueue_mail(
                connection,
                self.mails.download_guide(
                    to=row.email, certificate_user_id=row.certificate_user_id, deadline=deadline
                ),
                now=now,
            )
        return DownloadCredentials(row.certificate_user_id, download_password, deadline)

    def unlock(self, enrollment_id: str, *, now: dt.datetime) -> EnrollmentRow:
        """An officer's unlock: the failures are forgotten and the user resumes where they were."""
        with self.engine.begin() as connection:
            row = enrollment_by_id(connection, enrollment_id)
            if row is None:
                raise EnrollmentNotFoundError(enrollment_id)
            if row.status != "locked":
                raise WrongStepError(f"enrollment {enrollment_id} is not locked")
            unlocked = dataclasses.replace(
                row, status=_resumed_status(row), failed_attempts=0, locked_at=None, updated_at=now
            )
            if not update_enrollment(
                connection,
                row.id,
                expected_status="locked",
                status=unlocked.status,
                failed_attempts=0,
                locked_at=None,
                updated_at=now,
            ):
                raise WrongStepError(f"enrollment {enrollment_id} is not locked")
        return unlocked


def _validated_answer(question: str, answer: str, answer_confirm: str) -> str:
    if question not in SECRET_QUESTIONS:
        raise InvalidInputError("question", "choose one of the questions")
    normalised = credentials.normalise_answer(answer)
    if not normalised:
        raise InvalidInputError("answer", "required")
    if len(normalised) > MAX_ANSWER_LENGTH:
        raise InvalidInputError("answer", f"at most {MAX_ANSWER_LENGTH} characters")
    if normalised != credentials.normalise_answer(answer_confirm):
        raise InvalidInputError("answer_confirm", "the two answers differ")
    return normalised


def _resumed_status(row: EnrollmentRow) -> str:
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
