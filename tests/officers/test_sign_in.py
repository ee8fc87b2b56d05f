"""Sign-in and step-up: real assertions through py_webauthn, user verification required, and
a signature counter that must grow."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest

from pwa_server.officers.errors import (
    AssertionRefusedError,
    AssertionReplayedError,
    ChallengeExpiredError,
    OfficerDisabledError,
    OfficerError,
    SignCountError,
    UnknownCredentialError,
    WrongOfficerError,
)
from pwa_server.officers.models import Officer
from pwa_server.officers.service import OfficerService
from tests.officers.authenticator import SoftwareAuthenticator, b64url, from_b64url
from tests.officers.conftest import ORIGIN, RP_ID, Clock, Member, Team, register, sign_in


def stored_count(service: OfficerService, member: Member) -> int:
    return service.keys.of(member.officer.id)[0].sign_count


def answer(service: OfficerService, assertion: str, challenge: bytes, now: dt.datetime) -> Officer:
    return service.sign_in.authenticate(
        credential_json=assertion, expected_challenge=challenge, now=now
    )


def test_sign_in_options_ask_any_discoverable_key_with_user_verification(
    service: OfficerService, clock: Clock
) -> None:
    options = json.loads(service.sign_in.options(now=clock()).options_json)

    assert options["rpId"] == RP_ID
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"


def test_an_officer_signs_in_with_their_key(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    now = clock()

    officer = sign_in(service, first.key, now)

    assert officer.id == first.officer.id
    assert officer.last_sign_in_at == now
    [key] = service.keys.of(first.officer.id)
    assert (key.sign_count, key.last_used_at) == (1, now)


def test_each_sign_in_moves_the_stored_counter_on(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    for _ in range(3):
        sign_in(service, first.key, clock())

    assert stored_count(service, first) == 3


@pytest.mark.parametrize("received", [4, 5], ids=["went-backwards", "stayed-equal"])
def test_a_counter_that_did_not_increase_is_refused_and_the_stored_one_stays(
    service: OfficerService, clock: Clock, first: Member, received: int
) -> None:
    sign_in_with_count(service, first, clock(), 5)

    with pytest.raises(SignCountError) as refused:
        sign_in_with_count(service, first, clock(), received)

    assert (refused.value.stored, refused.value.received) == (5, received)
    assert stored_count(service, first) == 5
    assert sign_in_with_count(service, first, clock(), 6).id == first.officer.id


def test_a_counter_back_at_zero_is_refused(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    sign_in_with_count(service, first, clock(), 7)

    with pytest.raises(SignCountError):
        sign_in_with_count(service, first, clock(), 0)
    assert stored_count(service, first) == 7


def sign_in_with_count(
    service: OfficerService, member: Member, now: dt.datetime, count: int
) -> Officer:
    ceremony = service.sign_in.options(now=now)
    return answer(
        service, member.key.get(ceremony.options_json, sign_count=count), ceremony.challenge, now
    )


def test_a_stale_counter_on_an_assertion_that_is_wrong_anyway_is_no_sign_count_error(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    sign_in_with_count(service, first, clock(), 5)
    ceremony = service.sign_in.options(now=clock())
    other = service.sign_in.options(now=clock())
    assertion = first.key.get(ceremony.options_json, sign_count=3)

    with pytest.raises(AssertionRefusedError) as refused:
        answer(service, assertion, other.challenge, clock())
    assert not isinstance(refused.value, SignCountError)


def test_a_key_without_a_counter_signs_in_again_and_again(
    service: OfficerService, clock: Clock
) -> None:
    key = SoftwareAuthenticator(ORIGIN, counter_step=0)
    officer = register(service, key, service.invitations.bootstrap(now=clock()).token, clock())

    for _ in range(3):
        assert sign_in(service, key, clock()).id == officer.id
    assert service.keys.of(officer.id)[0].sign_count == 0


@pytest.mark.parametrize("counter_step", [0, 1], ids=["no-counter", "counter"])
def test_an_assertion_is_accepted_once(
    service: OfficerService, clock: Clock, counter_step: int
) -> None:
    key = SoftwareAuthenticator(ORIGIN, counter_step=counter_step)
    register(service, key, service.invitations.bootstrap(now=clock()).token, clock())
    ceremony = service.sign_in.options(now=clock())
    assertion = key.get(ceremony.options_json)
    answer(service, assertion, ceremony.challenge, clock())

    with pytest.raises(AssertionReplayedError if counter_step == 0 else SignCountError):
        answer(service, assertion, ceremony.challenge, clock())


@pytest.mark.parametrize("counter_step", [0, 1], ids=["no-counter", "counter"])
def test_one_assertion_sent_several_times_at_once_signs_in_once(
    service: OfficerService, clock: Clock, counter_step: int
) -> None:
    key = SoftwareAuthenticator(ORIGIN, counter_step=counter_step)
    register(service, key, service.invitations.bootstrap(now=clock()).token, clock())
    now = clock()
    ceremony = service.sign_in.options(now=now)
    assertion = key.get(ceremony.options_json)
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def submit() -> None:
        barrier.wait()
        try:
            outcomes.append(answer(service, assertion, ceremony.challenge, now))
        except OfficerError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(isinstance(outcome, Officer) for outcome in outcomes) == 1
    assert all(
        isinstance(outcome, (AssertionReplayedError, SignCountError))
        for outcome in outcomes
        if not isinstance(outcome, Officer)
    )


def test_an_assertion_for_an_older_challenge_than_one_the_key_answered_is_refused(
    service: OfficerService, clock: Clock
) -> None:
    key = SoftwareAuthenticator(ORIGIN, counter_step=0)
    register(service, key, service.invitations.bootstrap(now=clock()).token, clock())
    older = service.sign_in.options(now=clock())
    newer = service.sign_in.options(now=clock())
    answer(service, key.get(newer.options_json), newer.challenge, clock())

    with pytest.raises(AssertionReplayedError):
        answer(service, key.get(older.options_json), older.challenge, clock())


def test_an_answer_after_the_challenge_expired_is_refused(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    ceremony = service.sign_in.options(now=clock())
    assertion = first.key.get(ceremony.options_json)
    clock.advance(dt.timedelta(minutes=5))

    with pytest.raises(ChallengeExpiredError):
        answer(service, assertion, ceremony.challenge, clock())
    assert stored_count(service, first) == 0


def test_a_challenge_that_is_not_ours_is_refused(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    forged = b"\x00" * 40
    assertion = first.key.get(service.sign_in.options(now=clock()).options_json, challenge=forged)

    with pytest.raises(ChallengeExpiredError):
        answer(service, assertion, forged, clock())


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ({"origin": "https://console.example.evil"}, "origin"),
        ({"origin": "http://console.example"}, "origin"),
        ({"rp_id": "example"}, "RP ID"),
        ({"user_verified": False}, "User verification is required"),
        ({"user_present": False}, "User was not present"),
    ],
)
def test_an_assertion_for_another_origin_or_rp_or_without_the_user_is_refused(
    service: OfficerService, clock: Clock, first: Member, tamper: dict[str, Any], message: str
) -> None:
    ceremony = service.sign_in.options(now=clock())
    assertion = first.key.get(ceremony.options_json, **tamper)

    with pytest.raises(AssertionRefusedError, match=message):
        answer(service, assertion, ceremony.challenge, clock())
    assert stored_count(service, first) == 0


def test_an_assertion_for_another_challenge_is_refused(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    asked = service.sign_in.options(now=clock())
    other = service.sign_in.options(now=clock())

    with pytest.raises(AssertionRefusedError, match="challenge"):
        answer(service, first.key.get(other.options_json), asked.challenge, clock())


def test_an_assertion_with_a_forged_signature_is_refused(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    ceremony = service.sign_in.options(now=clock())
    assertion = json.loads(first.key.get(ceremony.options_json))
    intruder = SoftwareAuthenticator(ORIGIN)
    intruder.create(service.keys.add_options(officer_id=first.officer.id, now=clock()).options_json)
    forged = json.loads(intruder.get(ceremony.options_json))
    assertion["response"]["signature"] = forged["response"]["signature"]

    with pytest.raises(AssertionRefusedError, match="signature"):
        answer(service, json.dumps(assertion), ceremony.challenge, clock())


def test_a_key_that_is_not_registered_is_refused(service: OfficerService, clock: Clock) -> None:
    stranger = SoftwareAuthenticator(ORIGIN)
    stranger.create(
        service.invitations.registration_options(
            invitation_token=service.invitations.bootstrap(now=clock()).token, now=clock()
        ).options_json
    )

    with pytest.raises(UnknownCredentialError):
        sign_in(service, stranger, clock())


def test_an_assertion_naming_another_user_handle_is_refused(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    ceremony = service.sign_in.options(now=clock())
    assertion = team.auditor.key.get(
        ceremony.options_json, user_handle=team.security.officer.id.encode()
    )

    with pytest.raises(AssertionRefusedError, match="user handle"):
        answer(service, assertion, ceremony.challenge, clock())


@pytest.mark.parametrize(
    "garbage",
    ["", "null", "{}", '{"id": "a", "rawId": "a", "type": "public-key", "response": {}}'],
)
def test_a_malformed_assertion_is_refused(
    service: OfficerService, clock: Clock, garbage: str
) -> None:
    ceremony = service.sign_in.options(now=clock())

    with pytest.raises(AssertionRefusedError):
        answer(service, garbage, ceremony.challenge, clock())


def test_a_truncated_authenticator_data_is_refused(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    ceremony = service.sign_in.options(now=clock())
    assertion = json.loads(first.key.get(ceremony.options_json))
    data = from_b64url(assertion["response"]["authenticatorData"])
    assertion["response"]["authenticatorData"] = b64url(data[:20])

    with pytest.raises(AssertionRefusedError):
        answer(service, json.dumps(assertion), ceremony.challenge, clock())


def test_the_key_of_a_disabled_officer_is_refused_and_its_counter_stays(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    service.roster.disable(
        by_officer_id=team.security.officer.id, officer_id=team.auditor.officer.id, now=clock()
    )

    with pytest.raises(OfficerDisabledError):
        sign_in(service, team.auditor.key, clock())
    assert stored_count(service, team.auditor) == 0


def test_step_up_with_the_signed_in_officers_key(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    signed_in = sign_in(service, team.registration.key, clock())
    ceremony = service.sign_in.step_up_options(officer_id=signed_in.id, now=clock())

    stepped_up = service.sign_in.step_up(
        officer_id=signed_in.id,
        credential_json=team.registration.key.get(ceremony.options_json),
        expected_challenge=ceremony.challenge,
        now=clock(),
    )

    assert stepped_up.id == signed_in.id
    assert stepped_up.last_sign_in_at == signed_in.last_sign_in_at  # a step-up is no sign-in
    assert stored_count(service, team.registration) == 2


def test_step_up_options_allow_only_the_officers_own_keys(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    ceremony = service.sign_in.step_up_options(officer_id=team.auditor.officer.id, now=clock())
    options = json.loads(ceremony.options_json)

    assert [item["id"] for item in options["allowCredentials"]] == [
        b64url(team.auditor.key.credentials[0].credential_id)
    ]
    assert options["userVerification"] == "required"


def test_step_up_with_another_officers_key_is_refused(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    ceremony = service.sign_in.options(now=clock())

    with pytest.raises(WrongOfficerError):
        service.sign_in.step_up(
            officer_id=team.security.officer.id,
            credential_json=team.auditor.key.get(ceremony.options_json),
            expected_challenge=ceremony.challenge,
            now=clock(),
        )
    assert stored_count(service, team.auditor) == 0


def test_step_up_of_a_disabled_officer_is_refused(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    ceremony = service.sign_in.options(now=clock())
    assertion = team.registration.key.get(ceremony.options_json)
    service.roster.disable(
        by_officer_id=team.security.officer.id,
        officer_id=team.registration.officer.id,
        now=clock(),
    )

    with pytest.raises(OfficerDisabledError):
        service.sign_in.step_up(
            officer_id=team.registration.officer.id,
            credential_json=assertion,
            expected_challenge=ceremony.challenge,
            now=clock(),
        )


def test_a_synced_passkey_is_stored_as_multi_device_and_backed_up(
    service: OfficerService, clock: Clock
) -> None:
    passkey = SoftwareAuthenticator(ORIGIN, counter_step=0, synced=True)
    officer = register(service, passkey, service.invitations.bootstrap(now=clock()).token, clock())

    assert sign_in(service, passkey, clock()).id == officer.id
    [key] = service.keys.of(officer.id)
    assert (key.device_type, key.backed_up, key.sign_count) == ("multi_device", True, 0)
