"""Registering keys (user verification required), adding more, and never removing the last."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest

from pwa_server.audit import events
from pwa_server.officers.errors import (
    ChallengeExpiredError,
    InvalidOfficerInputError,
    KeyNotFoundError,
    LastKeyError,
    OfficerError,
    RegistrationRefusedError,
    UnknownCredentialError,
)
from pwa_server.officers.models import StepUp, decode_credential_id, encode_credential_id
from pwa_server.officers.notices import account_notices
from pwa_server.officers.service import OfficerService
from tests.officers.authenticator import InvalidStateError, SoftwareAuthenticator, b64url
from tests.officers.conftest import (
    ORIGIN,
    RP_ID,
    Clock,
    Member,
    Team,
    confirmation,
    register,
    sign_in,
)


def add_key(
    service: OfficerService,
    member: Member,
    authenticator: SoftwareAuthenticator,
    now: dt.datetime,
    label: str = "spare key",
) -> None:
    ceremony = service.keys.add_options(officer_id=member.officer.id, now=now)
    service.keys.add(
        officer_id=member.officer.id,
        credential_json=authenticator.create(ceremony.options_json),
        expected_challenge=ceremony.challenge,
        label=label,
        confirmation=confirmation(service, member, now),
        now=now,
    )


def test_registration_options_require_user_verification_and_ask_for_no_attestation(
    service: OfficerService, clock: Clock
) -> None:
    link = service.invitations.bootstrap(now=clock())

    options = json.loads(
        service.invitations.registration_options(
            invitation_token=link.token, now=clock()
        ).options_json
    )

    assert options["rp"] == {"id": RP_ID, "name": "Shomei"}
    assert options["authenticatorSelection"]["userVerification"] == "required"
    # Required: sign-in asks for any discoverable credential (no name typed), so a key that
    # made a non-discoverable one could never sign in.
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []


def test_a_registration_without_user_verification_is_refused_and_the_link_stays_open(
    service: OfficerService, clock: Clock
) -> None:
    link = service.invitations.bootstrap(now=clock())
    ceremony = service.invitations.registration_options(invitation_token=link.token, now=clock())
    unverified = SoftwareAuthenticator(ORIGIN).create(ceremony.options_json, user_verified=False)

    with pytest.raises(RegistrationRefusedError, match="User verification is required"):
        service.invitations.register(
            invitation_token=link.token,
            credential_json=unverified,
            expected_challenge=ceremony.challenge,
            label="key",
            now=clock(),
        )
    assert service.roster.officers() == []
    assert register(service, SoftwareAuthenticator(ORIGIN), link.token, clock()).active


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ({"origin": "https://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "RP ID"),
        ({"challenge": b"\x00" * 40}, "challenge"),
    ],
)
def test_a_registration_for_another_origin_rp_or_challenge_is_refused(
    service: OfficerService, clock: Clock, tamper: dict[str, Any], message: str
) -> None:
    link = service.invitations.bootstrap(now=clock())
    ceremony = service.invitations.registration_options(invitation_token=link.token, now=clock())
    response = SoftwareAuthenticator(ORIGIN).create(ceremony.options_json, **tamper)

    with pytest.raises(RegistrationRefusedError, match=message):
        service.invitations.register(
            invitation_token=link.token,
            credential_json=response,
            expected_challenge=ceremony.challenge,
            label="key",
            now=clock(),
        )


@pytest.mark.parametrize("garbage", ["", "{}", "[]", '{"id": 1}', json.dumps({"id": "x"})])
def test_a_malformed_registration_response_is_refused(
    service: OfficerService, clock: Clock, garbage: str
) -> None:
    link = service.invitations.bootstrap(now=clock())
    ceremony = service.invitations.registration_options(invitation_token=link.token, now=clock())

    with pytest.raises(RegistrationRefusedError):
        service.invitations.register(
            invitation_token=link.token,
            credential_json=garbage,
            expected_challenge=ceremony.challenge,
            label="key",
            now=clock(),
        )


def test_a_registration_answered_after_the_challenge_expired_is_refused(
    service: OfficerService, clock: Clock
) -> None:
    link = service.invitations.bootstrap(now=clock())
    ceremony = service.invitations.registration_options(invitation_token=link.token, now=clock())
    response = SoftwareAuthenticator(ORIGIN).create(ceremony.options_json)
    clock.advance(dt.timedelta(minutes=6))

    with pytest.raises(ChallengeExpiredError):
        service.invitations.register(
            invitation_token=link.token,
            credential_json=response,
            expected_challenge=ceremony.challenge,
            label="key",
            now=clock(),
        )


@pytest.mark.parametrize("label", ["", "  ", "k" * 256])
def test_a_key_needs_a_label(service: OfficerService, clock: Clock, label: str) -> None:
    link = service.invitations.bootstrap(now=clock())

    with pytest.raises(InvalidOfficerInputError, match="label"):
        register(service, SoftwareAuthenticator(ORIGIN), link.token, clock(), label=label)


def test_the_key_is_stored_with_its_label_transports_and_counter(
    service: OfficerService, first: Member
) -> None:
    [key] = service.keys.of(first.officer.id)

    assert key.label == "blue key"
    assert key.transports == ("usb",)
    assert key.sign_count == 0
    assert key.credential_id == first.key.credentials[0].credential_id
    assert key.aaguid == "5f7a1ca4-c0f8-4bc5-a3c8-d2e1b4f6a7c9"
    assert (key.device_type, key.backed_up) == ("single_device", False)
    assert decode_credential_id(key.credential_id_text) == key.credential_id


def test_the_user_handle_is_the_officer_id(service: OfficerService, first: Member) -> None:
    assert first.key.credentials[0].user_handle == first.officer.id.encode()


def test_an_officer_adds_a_second_key_and_signs_in_with_either(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    spare = SoftwareAuthenticator(ORIGIN, transports=("nfc", "usb"))
    add_key(service, first, spare, clock())

    assert [key.label for key in service.keys.of(first.officer.id)] == ["blue key", "spare key"]
    assert sign_in(service, spare, clock()).id == first.officer.id
    assert sign_in(service, first.key, clock()).id == first.officer.id


def test_adding_a_key_excludes_the_keys_already_registered(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    ceremony = service.keys.add_options(officer_id=first.officer.id, now=clock())
    options = json.loads(ceremony.options_json)

    assert options["excludeCredentials"] == [
        {
            "id": b64url(first.key.credentials[0].credential_id),
            "type": "public-key",
            "transports": ["usb"],
        }
    ]
    assert options["user"]["id"] == b64url(first.officer.id.encode())
    with pytest.raises(InvalidStateError):
        first.key.create(ceremony.options_json)


def test_a_key_registered_already_is_refused(
    service: OfficerService, clock: Clock, first: Member, team: Team
) -> None:
    # The same registration response submitted again, by another officer.
    ceremony = service.keys.add_options(officer_id=team.auditor.officer.id, now=clock())
    response = SoftwareAuthenticator(ORIGIN).create(ceremony.options_json)
    service.keys.add(
        officer_id=team.auditor.officer.id,
        credential_json=response,
        expected_challenge=ceremony.challenge,
        label="one",
        confirmation=confirmation(service, team.auditor, clock()),
        now=clock(),
    )

    with pytest.raises(RegistrationRefusedError, match="registered already"):
        service.keys.add(
            officer_id=first.officer.id,
            credential_json=response,
            expected_challenge=ceremony.challenge,
            label="two",
            confirmation=confirmation(service, first, clock()),
            now=clock(),
        )
    assert len(service.keys.of(first.officer.id)) == 1


def test_a_removed_key_no_longer_signs_in(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    spare = SoftwareAuthenticator(ORIGIN)
    add_key(service, first, spare, clock())

    service.keys.remove(
        officer_id=first.officer.id, credential_id=spare.credentials[0].credential_id, now=clock()
    )

    assert [key.label for key in service.keys.of(first.officer.id)] == ["blue key"]
    with pytest.raises(UnknownCredentialError):
        sign_in(service, spare, clock())


def test_the_last_key_cannot_be_removed(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    with pytest.raises(LastKeyError):
        service.keys.remove(
            officer_id=first.officer.id,
            credential_id=first.key.credentials[0].credential_id,
            now=clock(),
        )

    assert len(service.keys.of(first.officer.id)) == 1
    assert sign_in(service, first.key, clock()).id == first.officer.id


def test_an_officer_cannot_remove_another_officers_key(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    add_key(service, team.auditor, SoftwareAuthenticator(ORIGIN), clock())

    with pytest.raises(KeyNotFoundError):
        service.keys.remove(
            officer_id=team.security.officer.id,
            credential_id=team.auditor.key.credentials[0].credential_id,
            now=clock(),
        )
    assert len(service.keys.of(team.auditor.officer.id)) == 2


def test_removing_two_keys_at_once_leaves_one(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    add_key(service, first, SoftwareAuthenticator(ORIGIN), clock())
    ids = [key.credential_id for key in service.keys.of(first.officer.id)]
    barrier = threading.Barrier(len(ids))
    refusals: list[OfficerError] = []

    def remove(credential_id: bytes) -> None:
        barrier.wait()
        try:
            service.keys.remove(
                officer_id=first.officer.id, credential_id=credential_id, now=clock.current
            )
        except OfficerError as error:
            refusals.append(error)

    threads = [threading.Thread(target=remove, args=(credential_id,)) for credential_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(service.keys.of(first.officer.id)) == 1
    assert [type(error) for error in refusals] == [LastKeyError]


def test_credential_ids_read_back_from_their_text() -> None:
    assert decode_credential_id(encode_credential_id(b"\xff\x00key")) == b"\xff\x00key"


def test_adding_a_key_without_a_fresh_assertion_of_a_registered_key_is_refused(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    intruder = SoftwareAuthenticator(ORIGIN)
    ceremony = service.keys.add_options(officer_id=first.officer.id, now=clock())
    response = intruder.create(ceremony.options_json)
    # The new key answering the step-up itself, and the officer's key two minutes late.
    own = service.sign_in.step_up_options(officer_id=first.officer.id, now=clock())
    late = confirmation(service, first, clock())
    clock.advance(dt.timedelta(minutes=2))
    attempts = [
        StepUp(intruder.get(own.options_json, credential=intruder.credentials[0]), own.challenge),
        late,
    ]

    for attempt in attempts:
        with pytest.raises((UnknownCredentialError, ChallengeExpiredError)):
            service.keys.add(
                officer_id=first.officer.id,
                credential_json=response,
                expected_challenge=ceremony.challenge,
                label="intruder",
                confirmation=attempt,
                now=clock(),
            )
    assert [key.label for key in service.keys.of(first.officer.id)] == ["blue key"]


def test_adding_and_removing_a_key_are_audited_with_the_change(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    spare = SoftwareAuthenticator(ORIGIN)
    add_key(service, first, spare, clock(), label="drawer key")
    service.keys.remove(
        officer_id=first.officer.id,
        credential_id=spare.credentials[0].credential_id,
        now=clock(),
        client="192.0.2.7",
    )

    changes = [
        (event.action, event.subject, json.loads(event.details or "{}")["label"])
        for event in events(service.engine, limit=10, subject=first.officer.id)
        if event.action.startswith("officer.credential")
    ]
    assert changes == [
        ("officer.credential_removed", first.officer.id, "drawer key"),
        ("officer.credential_added", first.officer.id, "drawer key"),
    ]
    notices = account_notices(service.engine, first.officer.id, now=clock())
    assert [(notice.label, notice.client) for notice in notices] == [
        ("drawer key", "192.0.2.7"),
        ("drawer key", ""),
    ]
