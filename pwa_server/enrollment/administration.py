"""An administrator's operations on an enrollment (officers, relying sites, the CLI): a new
one-time password, reissue and renewal, mails sent again, cancel and unlock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from pwa_server.audit import CLI, Actor, AuditAction
from pwa_server.enrollment import credentials
from pwa_server.enrollment.audit_trail import record_enrollment_event
from pwa_server.enrollment.errors import EnrollmentNotFoundError, WrongStepError
from pwa_server.enrollment.hashing import SecretHashes
from pwa_server.enrollment.mails import EnrollmentMails
from pwa_server.enrollment.models import Invitation
from pwa_server.enrollment.policy import EnrollmentPolicy
from pwa_server.enrollment.states import (
    check_open,
    raise_for,
    resumed_status,
)
from pwa_server.enrollment.throttle import id_prefix
from pwa_server.notify.outbox import enqueue_mail
from pwa_server.store.enrollments import EnrollmentRow, enrollment_by_id, update_enrollment
from pwa_server.store.guess_throttles import forget_prefix
from pwa_server.vocabulary import OTP_STEPS, REISSUABLE, EnrollmentStatus


@dataclass(frozen=True)
class EnrollmentAdministration:
    """An administrator's operations on enrollments, beside the user's own steps
    (EnrollmentService) over the same database, policy and mails."""

    engine: Engine
    policy: EnrollmentPolicy
    mails: EnrollmentMails
    public_url: str
    hashes: SecretHashes

    def new_one_time_password(
        self, enrollment_id: str, *, now: dt.datetime, actor: Actor = CLI
    ) -> Invitation:
        """A fresh one-time password for an invitation not yet used; the old one stops working.

        For a site that lost the answer to its creation request: the password is stored only
        as a hash, so the same one cannot be shown again.
        """
        one_time_password = credentials.new_one_time_password()
        one_time_password_hash = self.hashes.keyed(one_time_password)
        with self.engine.begin() as connection:
            row = enrollment_by_id(connection, enrollment_id)
            if row is None:
                raise EnrollmentNotFoundError(enrollment_id)
            check_open(row, now)
            if not update_enrollment(
                connection,
                row.id,
                expected_status=EnrollmentStatus.INVITED,
                one_time_password_hash=one_time_password_hash,
                updated_at=now,
            ):
                raise WrongStepError("the one-time password was already used")
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_ONE_TIME_PASSWORD_REISSUED,
                row.id,
                actor=actor,
                now=now,
            )
        return Invitation(
            enrollment_id=row.id,
            enrollment_url=f"{self.public_url}/enroll/{row.id}",
            one_time_password=one_time_password,
            expires_at=row.expires_at,
            certificate_user_id=row.certificate_user_id,
        )

    def reissue(
        self,
        enrollment_id: str,
        *,
        now: dt.datetime,
        actor: Actor = CLI,
        keep_previous: bool = False,
    ) -> EnrollmentRow:
        """An administrator's reissue (seed 003): the download guide is mailed again and a new
        download window opens; the user downloads with the download password already noted.
        The current certificate stays valid until the new one is downloaded, then it is
        revoked as superseded — unless `keep_previous` (a renewal, seed 004: the old and new
        certificates coexist until the old one expires)."""
        with self.engine.begin() as connection:
            row = enrollment_by_id(connection, enrollment_id)
            if row is None:
                raise EnrollmentNotFoundError(enrollment_id)
            if row.status not in REISSUABLE:
                raise WrongStepError(f"enrollment {enrollment_id} is {row.status}")
            deadline = now + self.policy.download_period
            if not update_enrollment(
                connection,
                row.id,
                expected_status=row.status,
                status=EnrollmentStatus.SECRET_REGISTERED,
                downloads=0,
                first_download_at=None,
                download_deadline=deadline,
                installed_at=None,
                keep_previous_certificate=keep_previous,
                issuance_notice_at=now,
                updated_at=now,
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
            latest = enrollment_by_id(connection, row.id)
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_REISSUED,
                row.id,
                actor=actor,
                details={
                    "by": "administrator",
                    "renewal": keep_previous,
                    "previous_status": row.status,
                    "download_deadline": deadline.isoformat(),
                },
                now=now,
            )
        if latest is None:
            raise EnrollmentNotFoundError(enrollment_id)
        return latest

    def renew(self, enrollment_id: str, *, now: dt.datetime, actor: Actor = CLI) -> EnrollmentRow:
        """Renewal (seed 004): a new certificate to download, the current one valid until it
        expires."""
        return self.reissue(enrollment_id, now=now, actor=actor, keep_previous=True)

    def resend_mail(
        self, enrollment_id: str, *, now: dt.datetime, actor: Actor = CLI
    ) -> EnrollmentRow:
        """Mail the user again what they need at their step: the invitation (the URL, never
        the one-time password) before the secret question, the download guide after it."""
        with self.engine.begin() as connection:
            row = enrollment_by_id(connection, enrollment_id)
            if row is None:
                raise EnrollmentNotFoundError(enrollment_id)
            check_open(row, now)
            if row.status in OTP_STEPS:
                message = self.mails.invitation(
                    to=row.email,
                    display_name=row.display_name,
                    enrollment_url=f"{self.public_url}/enroll/{row.id}",
                    expires_at=row.expires_at,
                )
            else:
                message = self.mails.download_guide(
                    to=row.email,
                    display_name=row.display_name,
                    certificate_user_id=row.certificate_user_id,
                    deadline=row.download_deadline or now,
                )
            enqueue_mail(connection, message, now=now)
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_MAIL_RESENT,
                row.id,
                actor=actor,
                details={"status": row.status},
                now=now,
            )
        return row

    def cancel(self, enrollment_id: str, *, now: dt.datetime, actor: Actor = CLI) -> EnrollmentRow:
        """Cancel an enrollment for good: its link stops working (certificates already issued
        are revoked separately, with a reason)."""
        with self.engine.begin() as connection:
            row = enrollment_by_id(connection, enrollment_id)
            if row is None:
                raise EnrollmentNotFoundError(enrollment_id)
            if row.status == EnrollmentStatus.CANCELLED:
                raise WrongStepError(f"enrollment {enrollment_id} is already cancelled")
            if not update_enrollment(
                connection,
                row.id,
                expected_status=row.status,
                status=EnrollmentStatus.CANCELLED,
                updated_at=now,
            ):
                raise WrongStepError(f"enrollment {enrollment_id} changed meanwhile")
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_CANCELLED,
                row.id,
                actor=actor,
                details={"previous_status": row.status},
                now=now,
            )
        return dataclasses.replace(row, status=EnrollmentStatus.CANCELLED, updated_at=now)

    def unlock(self, enrollment_id: str, *, now: dt.datetime, actor: Actor = CLI) -> EnrollmentRow:
        """An officer's unlock: every counter of wrong secrets is forgotten (failures, guesses
        in flight, download-password waits) and a locked user resumes where they were.

        Refused only when there is nothing to forget.
        """
        with self.engine.begin() as connection:
            row = enrollment_by_id(connection, enrollment_id)
            if row is None:
                raise EnrollmentNotFoundError(enrollment_id)
            status = resumed_status(row) if row.status == EnrollmentStatus.LOCKED else row.status
            throttles = forget_prefix(connection, id_prefix(row.certificate_user_id))
            counted = row.failed_attempts or row.guesses_in_flight or throttles
            if row.status != EnrollmentStatus.LOCKED and not counted:
                raise WrongStepError(f"enrollment {enrollment_id} is not locked")
            cleared: dict[str, Any] = {
                "status": status,
                "failed_attempts": 0,
                "guesses_in_flight": 0,
                "guess_lease_until": None,
                "locked_at": None,
                "updated_at": now,
            }
            if not update_enrollment(connection, row.id, expected_status=row.status, **cleared):
                raise WrongStepError(f"enrollment {enrollment_id} changed meanwhile")
            record_enrollment_event(
                connection,
                AuditAction.ENROLLMENT_UNLOCKED,
                row.id,
                actor=actor,
                details={
                    "resumed_status": status,
                    "failed_attempts": row.failed_attempts,
                    "guesses_in_flight": row.guesses_in_flight,
                    "download_throttles": throttles,
                },
                now=now,
            )
        return dataclasses.replace(row, **cleared)
