"""An officer service on a migrated database (SQLite and PostgreSQL), a clock that moves, and
software authenticators standing in for security keys and browsers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from pwa_server.officers.models import Officer, StepUp
from pwa_server.officers.roles import Role
from pwa_server.officers.service import OfficerService
from tests.officers.authenticator import SoftwareAuthenticator

RP_ID = "console.example"
ORIGIN = "https://console.example"
START = dt.datetime(2025, 4, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    """The time the tests hand to the service as `now`; each reading moves it on a second,
    as time passes between a person's steps."""

    def __init__(self) -> None:
        self.current = START

    def __call__(self) -> dt.datetime:
        self.current += dt.timedelta(seconds=1)
        return self.current

    def advance(self, delta: dt.timedelta) -> None:
        self.current += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(engine: Engine) -> OfficerService:
    return OfficerService(engine, rp_id=RP_ID, rp_name="Shomei", origin=ORIGIN)


def register(
    service: OfficerService,
    authenticator: SoftwareAuthenticator,
    token: str,
    now: dt.datetime,
    *,
    label: str = "blue key",
) -> Officer:
    """Open the invitation link and register `authenticator`'s new credential through it."""
    ceremony = service.invitations.registration_options(invitation_token=token, now=now)
    return service.invitations.register(
        invitation_token=token,
        credential_json=authenticator.create(ceremony.options_json),
        expected_challenge=ceremony.challenge,
        label=label,
        now=now,
    )


def sign_in(
    service: OfficerService, authenticator: SoftwareAuthenticator, now: dt.datetime
) -> Officer:
    """Sign in with the authenticator's newest credential."""
    ceremony = service.sign_in.options(now=now)
    return service.sign_in.authenticate(
        credential_json=authenticator.get(ceremony.options_json),
        expected_challenge=ceremony.challenge,
        now=now,
    )


@dataclass(frozen=True)
class Member:
    """An officer and the authenticator holding their key."""

    officer: Officer
    key: SoftwareAuthenticator


def confirmation(service: OfficerService, member: Member, now: dt.datetime) -> StepUp:
    """A fresh assertion of the member's key, as the console asks before a change."""
    ceremony = service.sign_in.step_up_options(officer_id=member.officer.id, now=now)
    return StepUp(member.key.get(ceremony.options_json), ceremony.challenge)


@dataclass(frozen=True)
class Team:
    """One officer of each role; the security officer came first, by the bootstrap link."""

    security: Member
    registration: Member
    auditor: Member


@pytest.fixture
def first(service: OfficerService, clock: Clock) -> Member:
    """The first security officer, registered through the bootstrap link."""
    key = SoftwareAuthenticator(ORIGIN)
    link = service.invitations.bootstrap(now=clock(), display_name="Aiko Security")
    return Member(register(service, key, link.token, clock()), key)


@pytest.fixture
def team(service: OfficerService, clock: Clock, first: Member) -> Team:
    members = {}
    for role, name in ((Role.REGISTRATION_OFFICER, "Ren"), (Role.AUDITOR, "Aya")):
        link = service.invitations.invite(
            by_officer_id=first.officer.id, role=role, display_name=name, now=clock()
        )
        key = SoftwareAuthenticator(ORIGIN)
        members[role] = Member(register(service, key, link.token, clock()), key)
    return Team(first, members[Role.REGISTRATION_OFFICER], members[Role.AUDITOR])
