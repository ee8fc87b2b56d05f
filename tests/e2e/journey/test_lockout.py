"""Lockout at exactly the limit (6 by default): the remaining tries are shown, the sixth wrong
secret locks the enrollment with a page saying whom to contact, and only an unlock by the
administrator (`shomei enroll unlock ID`) lets the person go on; guesses sent concurrently
must not get past the limit either."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine

from tests.e2e.journey.conftest import InvitationPool, JourneyServer
from tests.e2e.journey.flow import (
    Invitation,
    Phone,
    assert_person_page,
    enrollment_row,
    error_message,
    heading,
)

LIMIT = 6  # one_time_password_max_failures, the seed's default
WRONG = "00000000"


@dataclass(frozen=True)
class Locked:
    invitation: Invitation
    attempts: list[httpx.Response]


@pytest.fixture(scope="module")
def locked(journey_server: JourneyServer, invitations: InvitationPool) -> Locked:
    """An enrollment after six wrong one-time passwords in a row."""
    invitation = invitations.take()
    assert invitation.one_time_password != WRONG
    with Phone(journey_server, language="en") as phone:
        phone.get(invitation.enrollment_url)
        attempts = [phone.submit_one_time_password(invitation, WRONG) for _ in range(LIMIT)]
    return Locked(invitation, attempts)


def test_each_wrong_one_time_password_shows_the_remaining_tries(locked: Locked) -> None:
    before_the_limit = locked.attempts[: LIMIT - 1]
    assert [response.status_code for response in before_the_limit] == [400] * (LIMIT - 1)
    assert [error_message(response.text) for response in before_the_limit] == [
        f"That is not right. {remaining} {'try' if remaining == 1 else 'tries'} left."
        for remaining in (5, 4, 3, 2, 1)
    ]


def test_the_sixth_wrong_one_time_password_locks_with_a_page_saying_whom_to_contact(
    locked: Locked,
) -> None:
    sixth = locked.attempts[LIMIT - 1]
    assert sixth.status_code == 423
    assert_person_page(sixth)
    assert heading(sixth.text) == "This enrollment is locked"
    assert "Contact the administrator who invited you to unlock it." in sixth.text


def test_a_locked_enrollment_refuses_even_the_right_password_until_unlocked(
    locked: Locked, journey_server: JourneyServer
) -> None:
    invitation = locked.invitation
    with Phone(journey_server, language="en") as phone:
        assert phone.get(invitation.enrollment_url).status_code == 423
        refused = phone.submit_one_time_password(invitation, invitation.one_time_password)
        assert refused.status_code == 423
        assert heading(refused.text) == "This enrollment is locked"

        unlocked = journey_server.shomei("enroll", "unlock", invitation.enrollment_id)
        assert unlocked.returncode == 0, unlocked.stderr
        assert f"enrollment {invitation.enrollment_id} unlocked" in unlocked.stdout

        assert phone.get(invitation.enrollment_url).status_code == 200
        accepted = phone.submit_one_time_password(invitation, invitation.one_time_password)
    assert accepted.status_code == 200
    assert str(accepted.url) == f"{invitation.enrollment_url}/secret"


def test_wrong_download_passwords_do_not_count_toward_the_lockout_of_secret_answers(
    journey_server: JourneyServer, invitation: Invitation
) -> None:
    # Issue 17, finding 5: three wrong download passwords and three wrong answers locked it.
    with Phone(journey_server, language="en") as phone:
        credentials = phone.enroll(invitation, answer="Pochi")
        user_id = credentials.certificate_user_id
        passwords = [phone.download(credentials, "android", password="wrongpasswrd") for _ in "123"]
        answers = [phone.reissue(user_id, "Tama") for _ in range(LIMIT)]
        right_password = phone.download(credentials, "android")
        right_answer = phone.reissue(user_id, "Pochi")
    assert [response.status_code for response in passwords] == [400] * 3
    assert {error_message(response.text) for response in passwords} == {
        "The certificate user ID or the download password is wrong."
    }
    assert [response.status_code for response in answers] == [400] * (LIMIT - 1) + [423]
    assert [error_message(response.text) for response in answers[: LIMIT - 1]] == [
        f"That is not right. {remaining} {'try' if remaining == 1 else 'tries'} left."
        for remaining in (5, 4, 3, 2, 1)
    ]
    for refused in (answers[-1], right_password, right_answer):
        assert refused.status_code == 423
        assert_person_page(refused)
        assert heading(refused.text) == "This enrollment is locked"


# Concurrent guesses. The limit must hold however the guesses arrive: a guess that comes
# while others are being checked must not be judged on a state read before they counted.
GUESSES_IN_FLIGHT = 29  # wrong ones, sent together; well over twice the limit
RIGHT_GUESS_DELAY = 0.5  # seconds: the right guess comes while the wrong ones are in flight


def _race(
    server: JourneyServer,
    wrong: Callable[[Phone], httpx.Response],
    right: Callable[[Phone], httpx.Response],
) -> tuple[list[httpx.Response], httpx.Response]:
    """Send the wrong guesses at once, then the right one; each from its own session."""
    phones = [Phone(server, language="en") for _ in range(GUESSES_IN_FLIGHT + 1)]
    try:
        for phone in phones:
            phone.get("/download")  # the session and its CSRF token, before the race
        start = threading.Barrier(GUESSES_IN_FLIGHT)

        def guess(phone: Phone) -> httpx.Response:
            start.wait()
            return wrong(phone)

        with ThreadPoolExecutor(max_workers=GUESSES_IN_FLIGHT) as pool:
            in_flight = [pool.submit(guess, phone) for phone in phones[:GUESSES_IN_FLIGHT]]
            time.sleep(RIGHT_GUESS_DELAY)
            answered = right(phones[-1])
            return [future.result() for future in in_flight], answered
    finally:
        for phone in phones:
            phone.client.close()


def test_concurrent_one_time_password_guesses_never_reveal_the_right_one_past_the_limit(
    journey_server: JourneyServer, invitation: Invitation
) -> None:
    # Either the right password is judged within the limit (and accepted), or it is refused
    # without being judged: 423 once the enrollment is locked, or 429 while the allowed
    # guesses are still being checked. Any other answer would tell the attacker it was right.
    wrong, right = _race(
        journey_server,
        lambda phone: phone.submit_one_time_password(invitation, WRONG),
        lambda phone: phone.submit_one_time_password(invitation, invitation.one_time_password),
    )
    assert sum(response.status_code == 400 for response in wrong) <= LIMIT - 1
    assert right.status_code in (200, 423, 429), (
        f"the right one-time password got {right.status_code} {heading(right.text)!r} after "
        f"{GUESSES_IN_FLIGHT} concurrent wrong guesses (limit {LIMIT})"
    )


def test_concurrent_secret_answer_guesses_cannot_lift_the_lockout(
    journey_server: JourneyServer, invitation: Invitation, database: Engine
) -> None:
    # Whatever the order, 29 wrong answers against a limit of 6 leave the enrollment locked:
    # if the right answer were judged within the limit, the wrong ones after it lock it again.
    with Phone(journey_server, language="en") as owner:
        user_id = owner.enroll(invitation, answer="Pochi").certificate_user_id
    _, right = _race(
        journey_server,
        lambda phone: phone.reissue(user_id, "Tama"),
        lambda phone: phone.reissue(user_id, "Pochi"),
    )
    row = enrollment_row(database, invitation.enrollment_id)
    assert row["status"] == "locked", (
        f"after {GUESSES_IN_FLIGHT} concurrent wrong answers and the right one (which got "
        f"{right.status_code}), the enrollment is {row['status']} with "
        f"{row['failed_attempts']} failures"
    )
