"""Bootstrap and invitation links: one-time, one hour, only from who may invite."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest
from sqlalchemy import Engine, func, select

from pwa_server.officers.errors import (
    BootstrapRefusedError,
    InvalidOfficerInputError,
    InvitationExpiredError,
    InvitationNotFoundError,
    InvitationUsedError,
    OfficerDisabledError,
    OfficerError,
    PermissionDeniedError,
)
from pwa_server.officers.roles import Role
from pwa_server.officers.service import OfficerService
from pwa_server.store.tables import officer_invitations, officers
from tests.officers.authenticator import SoftwareAuthenticator
from tests.officers.conftest import ORIGIN, Clock, Member, Team, register

HOUR = dt.timedelta(hours=1)


def officer_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(officers)).scalar_one())


def invitation_count(engine: Engine) -> int:
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(officer_invitations))
        return int(count.scalar_one())


def test_the_bootstrap_link_registers_the_first_security_officer(
    service: OfficerService, clock: Clock
) -> None:
    link = service.invitations.bootstrap(now=clock(), display_name="Aiko Security")

    officer = register(service, SoftwareAuthenticator(ORIGIN), link.token, clock())

    assert officer.role is Role.SECURITY_OFFICER
    assert officer.display_name == "Aiko Security"
    assert officer.active
    assert [officer.id] == [listed.id for listed in service.roster.officers()]


def test_the_link_is_the_public_url_with_a_token_of_32_random_bytes_valid_one_hour(
    service: OfficerService, clock: Clock
) -> None:
    now = clock()

    link = service.invitations.bootstrap(now=now)

    assert link.url == f"{ORIGIN}/officer/register/{link.token}"
    assert len(link.token) == 43  # 32 bytes in unpadded base64url
    assert link.expires_at == now + HOUR


def test_only_the_hash_of_the_token_is_stored(
    service: OfficerService, engine: Engine, clock: Clock
) -> None:
    link = service.invitations.bootstrap(now=clock())

    with engine.connect() as connection:
        row = connection.execute(select(officer_invitations)).one()
    assert row.token_sha256 == hashlib.sha256(link.token.encode()).hexdigest()
    assert link.token not in repr(tuple(row))


def test_the_bootstrap_link_works_once(service: OfficerService, clock: Clock) -> None:
    link = service.invitations.bootstrap(now=clock())
    register(service, SoftwareAuthenticator(ORIGIN), link.token, clock())

    with pytest.raises(InvitationUsedError):
        service.invitations.registration_options(invitation_token=link.token, now=clock())
    with pytest.raises(InvitationUsedError):
        service.invitations.offer(token=link.token, now=clock())


def test_a_used_link_refuses_a_registration_begun_before_it_was_used(
    service: OfficerService, clock: Clock
) -> None:
    link = service.invitations.bootstrap(now=clock())
    late = SoftwareAuthenticator(ORIGIN)
    ceremony = service.invitations.registration_options(invitation_token=link.token, now=clock())
    register(service, SoftwareAuthenticator(ORIGIN), link.token, clock())

    with pytest.raises(InvitationUsedError):
        service.invitations.register(
            invitation_token=link.token,
            credential_json=late.create(ceremony.options_json),
            expected_challenge=ceremony.challenge,
            label="late key",
            now=clock(),
        )
    assert len(service.roster.officers()) == 1


def test_the_bootstrap_link_works_within_its_hour(service: OfficerService, clock: Clock) -> None:
    created = clock()
    link = service.invitations.bootstrap(now=created)

    officer = register(
        service, SoftwareAuthenticator(ORIGIN), link.token, created + HOUR - dt.timedelta(seconds=1)
    )

    assert officer.active


def test_the_bootstrap_link_stops_working_after_an_hour(
    service: OfficerService, clock: Clock
) -> None:
    created = clock()
    link = service.invitations.bootstrap(now=created)

    with pytest.raises(InvitationExpiredError):
        service.invitations.registration_options(invitation_token=link.token, now=created + HOUR)


def test_a_registration_begun_in_the_hour_is_refused_when_it_ends_after_it(
    service: OfficerService, engine: Engine, clock: Clock
) -> None:
    created = clock()
    link = service.invitations.bootstrap(now=created)
    begun = created + HOUR - dt.timedelta(seconds=30)
    ceremony = service.invitations.registration_options(invitation_token=link.token, now=begun)
    response = SoftwareAuthenticator(ORIGIN).create(ceremony.options_json)

    with pytest.raises(InvitationExpiredError):
        service.invitations.register(
            invitation_token=link.token,
            credential_json=response,
            expected_challenge=ceremony.challenge,
            label="key",
            now=created + HOUR,
        )
    assert officer_count(engine) == 0


def test_bootstrap_is_refused_once_an_officer_exists(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    with pytest.raises(BootstrapRefusedError, match="officers exist already"):
        service.invitations.bootstrap(now=clock())


def test_a_new_bootstrap_link_replaces_the_older_one(service: OfficerService, clock: Clock) -> None:
    older = service.invitations.bootstrap(now=clock())
    newer = service.invitations.bootstrap(now=clock())

    with pytest.raises(InvitationExpiredError):
        register(service, SoftwareAuthenticator(ORIGIN), older.token, clock())
    assert register(service, SoftwareAuthenticator(ORIGIN), newer.token, clock()).active


def test_an_unknown_token_is_refused(service: OfficerService, clock: Clock) -> None:
    service.invitations.bootstrap(now=clock())

    with pytest.raises(InvitationNotFoundError):
        service.invitations.registration_options(invitation_token="not-a-token", now=clock())


def test_the_invitation_page_shows_role_name_and_expiry(
    service: OfficerService, clock: Clock
) -> None:
    created = clock()
    link = service.invitations.bootstrap(now=created, display_name="  Aiko   Security ")

    invitation = service.invitations.offer(token=link.token, now=clock())

    assert (invitation.role, invitation.display_name) == (Role.SECURITY_OFFICER, "Aiko Security")
    assert invitation.expires_at == created + HOUR


@pytest.mark.parametrize("role", list(Role))
def test_a_security_officer_invites_officers_of_every_role(
    service: OfficerService, clock: Clock, first: Member, role: Role
) -> None:
    link = service.invitations.invite(
        by_officer_id=first.officer.id, role=role, display_name="New Officer", now=clock()
    )

    officer = register(service, SoftwareAuthenticator(ORIGIN), link.token, clock())

    assert (officer.role, officer.display_name) == (role, "New Officer")
    assert officer.id != first.officer.id


def test_an_invitation_link_works_once_and_for_an_hour(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    created = clock()
    used = service.invitations.invite(
        by_officer_id=first.officer.id, role=Role.AUDITOR, display_name="Aya", now=created
    )
    unused = service.invitations.invite(
        by_officer_id=first.officer.id, role=Role.AUDITOR, display_name="Eri", now=created
    )
    register(service, SoftwareAuthenticator(ORIGIN), used.token, clock())

    with pytest.raises(InvitationUsedError):
        register(service, SoftwareAuthenticator(ORIGIN), used.token, clock())
    with pytest.raises(InvitationExpiredError):
        register(service, SoftwareAuthenticator(ORIGIN), unused.token, created + HOUR)


@pytest.mark.parametrize("inviter", ["auditor", "registration"])
def test_only_who_may_invite_officers_invites(
    service: OfficerService, engine: Engine, clock: Clock, team: Team, inviter: str
) -> None:
    member: Member = getattr(team, inviter)
    before = invitation_count(engine)

    with pytest.raises(PermissionDeniedError, match="may not invite officers"):
        service.invitations.invite(
            by_officer_id=member.officer.id,
            role=Role.SECURITY_OFFICER,
            display_name="Mallory",
            now=clock(),
        )
    assert invitation_count(engine) == before


def test_a_disabled_officer_cannot_invite(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    second = service.invitations.invite(
        by_officer_id=team.security.officer.id,
        role=Role.SECURITY_OFFICER,
        display_name="Second",
        now=clock(),
    )
    other = register(service, SoftwareAuthenticator(ORIGIN), second.token, clock())
    service.roster.disable(by_officer_id=other.id, officer_id=team.security.officer.id, now=clock())

    with pytest.raises(OfficerDisabledError):
        service.invitations.invite(
            by_officer_id=team.security.officer.id,
            role=Role.AUDITOR,
            display_name="Late",
            now=clock(),
        )


def test_disabling_an_officer_ends_the_links_they_sent(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    second = service.invitations.invite(
        by_officer_id=first.officer.id, role=Role.SECURITY_OFFICER, display_name="Bo", now=clock()
    )
    other = register(service, SoftwareAuthenticator(ORIGIN), second.token, clock())
    pending = service.invitations.invite(
        by_officer_id=first.officer.id, role=Role.AUDITOR, display_name="Aya", now=clock()
    )

    service.roster.disable(by_officer_id=other.id, officer_id=first.officer.id, now=clock())

    with pytest.raises(InvitationExpiredError):
        service.invitations.offer(token=pending.token, now=clock())


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_a_display_name_is_required_and_bounded(
    service: OfficerService, clock: Clock, first: Member, name: str
) -> None:
    with pytest.raises(InvalidOfficerInputError, match="display_name"):
        service.invitations.invite(
            by_officer_id=first.officer.id, role=Role.AUDITOR, display_name=name, now=clock()
        )


def test_one_link_submitted_at_once_from_several_places_registers_one_officer(
    service: OfficerService, engine: Engine, clock: Clock
) -> None:
    link = service.invitations.bootstrap(now=clock())
    now = clock()
    attempts = []
    for _ in range(4):
        ceremony = service.invitations.registration_options(invitation_token=link.token, now=now)
        attempts.append((SoftwareAuthenticator(ORIGIN).create(ceremony.options_json), ceremony))
    barrier = threading.Barrier(len(attempts))
    outcomes: list[object] = []

    def submit(response: str, challenge: bytes) -> None:
        barrier.wait()
        try:
            outcomes.append(
                service.invitations.register(
                    invitation_token=link.token,
                    credential_json=response,
                    expected_challenge=challenge,
                    label="key",
                    now=now,
                )
            )
        except OfficerError as error:
            outcomes.append(error)

    threads = [
        threading.Thread(target=submit, args=(response, ceremony.challenge))
        for response, ceremony in attempts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(not isinstance(outcome, OfficerError) for outcome in outcomes) == 1
    assert all(
        isinstance(outcome, InvitationUsedError)
        for outcome in outcomes
        if isinstance(outcome, OfficerError)
    )
    assert officer_count(engine) == 1
