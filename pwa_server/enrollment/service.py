"""Invitation, one-time password, secret question and self-service reissue: the user's
steps (an administrator's are EnrollmentAdministration's, in administration.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Callable, Iterator

from sqlalchemy import Connection, Engine

from pwa_server.audit import CLI, Actor, AuditAction
from pwa_server.enrollment import credentials
from pwa_server.enrollment.audit_trail import record_enrollment_event
from pwa_server.enrollment.errors import (
    EnrollmentNotFoundError,
    InvalidInputError,
    WrongStepError,
)
from pwa_server.enrollment.hashing import SecretHashes
from pwa_server.enrollment.lockout import check_guess
from pwa_server.enrollment.mails import EnrollmentMails
from pwa_server.enrollment.models import DownloadCredentials, Invitation
from pwa_server.enrollment.policy import MAX_ANSWER_LENGTH, SECRET_QUESTIONS, EnrollmentPolicy
from pwa_server.enrollment.states import check_open, raise_for
from pwa_server.names import InvalidNameError, checked_identifier, checked_name, is_mail_address
from pwa_server.notify.outbox import enqueue_mail
from pwa_server.store.enrollments import (
    EnrollmentRow,
    enrollment_by_certificate_user_id,
    enrollment_by_id,
    guess_settled,
    insert_enrollment,
    update_enrollment,
)
from pwa_server.store.sites import site_by_id
from pwa_server.vocabulary import OTP_STEPS, REISSUABLE, EnrollmentStatus, KeyProfile

__all__ = ["DownloadCredentials", "EnrollmentService", "Invitation"]


class EnrollmentService:
    """The enrollment state machine over the database; every method takes the time as `now`."""

    def __init__(
        self,
        engine: Engine,
        policy: EnrollmentPolicy,
        mails: EnrollmentMails,
        public_url: str,
        hashes: SecretHashes,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.mails = mails
        self.public_url = public_url
        self.hashes = hashes

    def create(
        self,
        *,
        user_id: str,
        email: str,
        display_name: str | None = None,
        profile: KeyProfile = KeyProfile.DEFAULT,
        site_id: int | None = None,
        return_url: str | None = None,
        now: dt.datetime,
        connection: Connection | None = None,
        actor: Actor | None = None,
    ) -> Invitation:
        """Create an invitation and queue its mail (the URL only, never the password).

        With `connection`, in the caller's transaction (a site's idempotency key is recorded
        with it). Without `actor`, the invitation is recorded as the site's when `site_id` is
        given, else as the command line's.
        """
        user_id = _checked("user_id", checked_identifier, user_id.strip())
        if display_name is not None:
            display_name = _checked("display_name", checked_name, display_name)
        if not is_mail_address(email):
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
        one_time_password_hash = self.hashes.keyed(one_time_password)
        with _transaction(self.engine, connection) as connection:
            insert_enrollment(
                connection,
                id=enrollment_id,
                user_id=user_id.strip(),
                email=email,
                display_name=display_name,
                profile=profile,
                certificate_user_id=invitation.certificate_user_id,
                status=EnrollmentStatus.INVITED,
                one_time_password_hash=one_time_password_hash,
                expires_at=expires_at,
                created_at=now,
                download_deadline=now + self.policy.download_period,
                updated_at=now,
                site_id=site_id,
                return_url=return_url,
            )
            message = self.mails.invitation(
                to=email,
                display_name=display_name,
                enrollment_url=invitation.enrollment_url,
                expires_at=expires_at,
            )
            enqueue_mail(connection, message, now=now)
            if actor is None:
                site = site_by_id(connection, site_id) if site_id is not None else None
                actor = Actor.site(site.name) if site is not None else CLI
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_INVITED,
                enrollment_id,
                actor=actor,
                details={
                    "user_id": user_id.strip(),
                    "certificate_user_id": invitation.certificate_user_id,
                    "profile": profile,
                    "site_id": site_id,
                    "expires_at": expires_at.isoformat(),
                },
                now=now,
            )
        return invitation

    def current(self, enrollment_id: str, *, now: dt.datetime) -> EnrollmentRow:
        """The enrollment behind an enrollment URL, if it can still be used."""
        with self.engine.connect() as connection:
            row = enrollment_by_id(connection, enrollment_id)
        if row is None:
            raise EnrollmentNotFoundError(enrollment_id)
        check_open(row, now)
        return row

    def verify_one_time_password(
        self, enrollment_id: str, one_time_password: str, *, now: dt.datetime
    ) -> EnrollmentRow:
        """Step 2: the one-time password; wrong ones count toward the lockout.

        Also accepted again after it was verified, until the secret question is registered:
        a person whose browser session ended must be able to continue.
        """
        row = self.current(enrollment_id, now=now)
        if row.status not in OTP_STEPS:
            raise WrongStepError("the one-time password was already used")
        typed = credentials.normalise_typed(one_time_password)
        check_guess(
            self.engine,
            row.id,
            statuses=OTP_STEPS,
            limit=self.policy.max_failures,
            now=now,
            matches=lambda: self.hashes.verify(row.one_time_password_hash, typed),
            failure=AuditAction.ENROLLMENT_ONE_TIME_PASSWORD_FAILED,
        )
        with self.engine.begin() as connection:
            if not update_enrollment(
                connection,
                row.id,
                expected_status=row.status,
                status=EnrollmentStatus.OTP_VERIFIED,
                otp_verified_at=now,
                failed_attempts=0,
                updated_at=now,
                **guess_settled(),
            ):
                raise_for(connection, row.id)
            record_enrollment_event(
                connection, AuditAction.ENROLLMENT_ONE_TIME_PASSWORD_VERIFIED, row.id, now=now
            )
        return self.current(enrollment_id, now=now)

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
        if row.status != EnrollmentStatus.OTP_VERIFIED:
            raise WrongStepError("the secret question is registered after the one-time password")
        answer_text = _validated_answer(question, answer, answer_confirm)
        download_password = credentials.new_download_password()
        # Hashed before the transaction: no connection waits for Argon2id.
        answer_hash = self.hashes.argon2(answer_text)
        download_password_hash = self.hashes.keyed(download_password)
        with self.engine.begin() as connection:
            if not update_enrollment(
                connection,
                row.id,
                expected_status=EnrollmentStatus.OTP_VERIFIED,
                status=EnrollmentStatus.SECRET_REGISTERED,
                secret_question=question,
                secret_answer_hash=answer_hash,
                download_password_hash=download_password_hash,
                download_password_issued_at=now,
                issuance_notice_at=now,
                updated_at=now,
            ):
                raise WrongStepError("the secret question was already registered")
            enqueue_mail(
                connection,
                self.mails.download_guide(
                    to=row.email,
                    display_name=row.display_name,
                    certificate_user_id=row.certificate_user_id,
                    deadline=row.download_deadline or now,
                ),
                now=now,
            )
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_SECRET_REGISTERED,
                row.id,
                details={"certificate_user_id": row.certificate_user_id},
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
        check_open(row, now)
        stored_answer = row.secret_answer_hash
        check_guess(
            self.engine,
            row.id,
            statuses=REISSUABLE,
            limit=self.policy.max_failures,
            now=now,
            matches=lambda: self.hashes.verify(stored_answer, credentials.normalise_answer(answer)),
            failure=AuditAction.ENROLLMENT_SECRET_ANSWER_FAILED,
        )
        download_password = credentials.new_download_password()
        download_password_hash = self.hashes.keyed(download_password)
        deadline = now + self.policy.download_period
        with self.engine.begin() as connection:
            # Conditional on the status read before the guess: a lock set meanwhile stands.
            if not update_enrollment(
                connection,
                row.id,
                expected_status=row.status,
                status=EnrollmentStatus.SECRET_REGISTERED,
                download_password_hash=download_password_hash,
                download_password_issued_at=now,
                issuance_notice_at=now,
                downloads=0,
                first_download_at=None,
                download_deadline=deadline,
                installed_at=None,
                failed_attempts=0,
                keep_previous_certificate=False,
                updated_at=now,
                **guess_settled(),
            ):
                raise_for(connection, row.id)
            enqueue_mail(
                connection,
                self.mails.download_guide(
                    to=row.email,
                    display_name=row.display_name,
                    certificate_user_id=row.certificate_user_id,
                    deadline=deadline,
                ),
                now=now,
            )
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_REISSUED,
                row.id,
                details={
                    "by": "secret_answer",
                    "previous_status": row.status,
                    "download_deadline": deadline.isoformat(),
                },
                now=now,
            )
        return DownloadCredentials(row.certificate_user_id, download_password, deadline)


@contextlib.contextmanager
def _transaction(engine: Engine, connection: Connection | None) -> Iterator[Connection]:
    """The caller's transaction when there is one, else a new one."""
    if connection is not None:
        yield connection
        return
    with engine.begin() as own:
        yield own


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


def _checked(field: str, check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except InvalidNameError as error:
        raise InvalidInputError(field, str(error)) from None
