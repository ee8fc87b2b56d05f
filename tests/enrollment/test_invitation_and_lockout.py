"""Invitations, the one-time password, the lockout at exactly the limit, and unlocking."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from pwa_server.enrollment.errors import (
    EnrollmentExpiredError,
    EnrollmentLockedError,
    EnrollmentNotFoundError,
    InvalidInputError,
    TooManyAttemptsAtOnceError,
    WrongSecretError,
    WrongStepError,
)
from pwa_server.notify.mail import parse_stored
from pwa_server.store.tables import enrollments, outbox_messages
from tests.enrollment.conftest import START, Enrolling


def _text(stored: str) -> str:
    """The plain-text body of a queued mail, decoded."""
    part = parse_stored(stored).get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_invitation_gives_url_and_one_time_password_expiring_in_30_days(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    assert invitation.enrollment_url.endswith(f"/enroll/{invitation.enrollment_id}")
    assert len(invitation.one_time_password) == 8
    assert invitation.one_time_password.isdigit()
    assert invitation.expires_at == START + dt.timedelta(days=30)


def test_generated_secrets_are_stored_as_token_hmacs_and_the_answer_as_argon2id(
    enrolling: Enrolling,
) -> None:
    # Issue 17, finding 6: all three were Argon2id hashes.
    invitation, download_password = enrolling.ready_to_download()
    with enrolling.engine.connect() as connection:
        row = connection.execute(select(enrollments)).one()
    stored = " ".join(str(value) for value in row)
    assert invitation.one_time_password not in stored
    assert download_password not in stored
    assert "pochi" not in stored.lower()
    label = enrolling.service.hashes.key.label
    for column in ("one_time_password_hash", "download_password_hash"):
        assert getattr(row, column).startswith(f"hmac-sha256${label}$")
    assert row.secret_answer_hash.startswith("$argon2id$")


def test_invitation_mail_is_queued_with_the_url_and_never_the_password(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    body: str
    with enrolling.engine.connect() as connection:
        (body,) = connection.execute(select(outbox_messages.c.body)).scalars().all()
    mail = _text(body)
    assert invitation.enrollment_url in mail
    assert invitation.one_time_password not in mail


def test_invitation_mail_is_addressed_to_the_person_with_the_expiry_in_japan_time(
    enrolling: Enrolling,
) -> None:
    enrolling.service.create(
        user_id="hanako", email="hanako@example.jp", display_name="山田 花子", now=START
    )
    body: str
    with enrolling.engine.connect() as connection:
        (body,) = connection.execute(select(outbox_messages.c.body)).scalars().all()
    mail = _text(body)
    # START + 30 days is 2026-05-01 09:00 UTC, 18:00 in Tokyo.
    assert "山田 花子 様" in mail
    assert "Dear 山田 花子," in mail
    assert "2026年5月1日 18:00（日本時間）" in mail
    assert "1 May 2026, 18:00 (Japan Time)" in mail
    assert "UTC" not in mail


def test_a_mail_without_a_display_name_greets_nobody(enrolling: Enrolling) -> None:
    enrolling.invite()
    body: str
    with enrolling.engine.connect() as connection:
        (body,) = connection.execute(select(outbox_messages.c.body)).scalars().all()
    mail = _text(body)
    assert "様" not in mail
    assert "Dear" not in mail


def test_invalid_email_is_refused_before_anything_is_stored(enrolling: Enrolling) -> None:
    with pytest.raises(InvalidInputError, match="email"):
        enrolling.service.create(user_id="u", email="not an address", now=START)
    with enrolling.engine.connect() as connection:
        assert connection.execute(select(enrollments.c.id)).all() == []


def test_wrong_one_time_passwords_count_down_and_lock_at_exactly_the_limit(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    limit = enrolling.policy.max_failures
    remaining = []
    for _ in range(limit - 1):
        with pytest.raises(WrongSecretError) as wrong:
            enrolling.service.verify_one_time_password(
                invitation.enrollment_id, "00000000", now=START
            )
        remaining.append(wrong.value.remaining)
    assert remaining == list(range(limit - 1, 0, -1))
    with pytest.raises(EnrollmentLockedError):
        enrolling.service.verify_one_time_password(invitation.enrollment_id, "00000000", now=START)
    with pytest.raises(EnrollmentLockedError):
        enrolling.service.verify_one_time_password(
            invitation.enrollment_id, invitation.one_time_password, now=START
        )


def test_unlock_forgets_the_failures_and_the_right_password_then_works(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    for _ in range(enrolling.policy.max_failures - 1):
        with pytest.raises(WrongSecretError):
            enrolling.service.verify_one_time_password(invitation.enrollment_id, "1", now=START)
    with pytest.raises(EnrollmentLockedError):
        enrolling.service.verify_one_time_password(invitation.enrollment_id, "1", now=START)

    unlocked = enrolling.administration.unlock(invitation.enrollment_id, now=START)

    assert unlocked.status == "invited"
    assert unlocked.failed_attempts == 0
    row = enrolling.service.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=START
    )
    assert row.status == "otp_verified"


def test_unlocking_an_enrollment_that_is_not_locked_is_refused(enrolling: Enrolling) -> None:
    invitation = enrolling.invite()
    with pytest.raises(WrongStepError):
        enrolling.administration.unlock(invitation.enrollment_id, now=START)


def test_a_right_password_resets_the_failure_count(enrolling: Enrolling) -> None:
    invitation = enrolling.invite()
    with pytest.raises(WrongSecretError):
        enrolling.service.verify_one_time_password(invitation.enrollment_id, "1", now=START)
    row = enrolling.service.verify_one_time_password(
        invitation.enrollment_id,
        f" {invitation.one_time_password[:4]} {invitation.one_time_password[4:]}",
        now=START,
    )
    assert row.failed_attempts == 0


def test_one_time_password_is_refused_once_the_secret_is_registered(
    enrolling: Enrolling,
) -> None:
    invitation, _ = enrolling.ready_to_download()
    with pytest.raises(WrongStepError):
        enrolling.service.verify_one_time_password(
            invitation.enrollment_id, invitation.one_time_password, now=START
        )


def test_expired_link_is_refused_even_with_the_right_password(enrolling: Enrolling) -> None:
    invitation = enrolling.invite()
    later = invitation.expires_at
    with pytest.raises(EnrollmentExpiredError):
        enrolling.service.verify_one_time_password(
            invitation.enrollment_id, invitation.one_time_password, now=later
        )


def test_unknown_enrollment_id_is_not_found(enrolling: Enrolling) -> None:
    with pytest.raises(EnrollmentNotFoundError):
        enrolling.service.current("no-such-id", now=START)


@pytest.mark.parametrize(
    ("question", "answer", "confirm", "field"),
    [
        ("no-such-question", "a", "a", "question"),
        ("first-pet", "   ", "   ", "answer"),
        ("first-pet", "x" * 201, "x" * 201, "answer"),
        ("first-pet", "Pochi", "Tama", "answer_confirm"),
    ],
)
def test_secret_question_input_is_checked(
    enrolling: Enrolling, question: str, answer: str, confirm: str, field: str
) -> None:
    invitation = enrolling.invite()
    enrolling.service.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=START
    )
    with pytest.raises(InvalidInputError) as invalid:
        enrolling.service.register_secret(
            invitation.enrollment_id,
            question=question,
            answer=answer,
            answer_confirm=confirm,
            now=START,
        )
    assert invalid.value.field == field


def test_secret_question_comes_after_the_one_time_password(enrolling: Enrolling) -> None:
    invitation = enrolling.invite()
    with pytest.raises(WrongStepError):
        enrolling.service.register_secret(
            invitation.enrollment_id,
            question="first-pet",
            answer="a",
            answer_confirm="a",
            now=START,
        )


def test_download_password_has_at_least_60_bits_from_unambiguous_characters(
    enrolling: Enrolling,
) -> None:
    _, password = enrolling.ready_to_download()
    assert len(password) >= 13
    assert not set(password) & set("01ilo")
    assert password == password.lower()


def test_download_guide_mail_has_the_user_id_and_never_the_password(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    with enrolling.engine.connect() as connection:
        mails: Sequence[str] = (
            connection.execute(select(outbox_messages.c.body).order_by(outbox_messages.c.id))
            .scalars()
            .all()
        )
    guide = _text(mails[-1])
    assert invitation.certificate_user_id in guide
    assert "/download" in guide
    assert password not in guide


def test_download_guide_mail_gives_the_deadline_in_japan_time(enrolling: Enrolling) -> None:
    enrolling.ready_to_download()
    bodies: Sequence[str]
    with enrolling.engine.connect() as connection:
        bodies = connection.execute(select(outbox_messages.c.body)).scalars().all()
    guide = _text(bodies[-1])
    assert "（日本時間）" in guide
    assert "(Japan Time)" in guide
    assert "UTC" not in guide


def test_concurrent_guesses_never_check_more_secrets_than_the_limit(enrolling: Enrolling) -> None:
    invitation = enrolling.invite()
    guesses = ["00000000"] * 29 + [invitation.one_time_password]

    def guess(value: str) -> str:
        try:
            enrolling.service.verify_one_time_password(invitation.enrollment_id, value, now=START)
        except WrongSecretError:
            return "wrong"
        except EnrollmentLockedError:
            return "locked"
        except TooManyAttemptsAtOnceError:
            return "busy"
        return "right"

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(guess, guesses))

    # Only the guesses that were counted got an answer about the secret itself.
    assert outcomes.count("wrong") + outcomes.count("right") <= enrolling.policy.max_failures
    with enrolling.engine.connect() as connection:
        status: str = connection.execute(select(enrollments.c.status)).scalar_one()
    assert status == ("otp_verified" if "right" in outcomes else "locked")


def test_the_one_time_password_is_asked_again_until_the_secret_is_registered(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    for _ in range(2):
        row = enrolling.service.verify_one_time_password(
            invitation.enrollment_id, invitation.one_time_password, now=START
        )
        assert row.status == "otp_verified"
