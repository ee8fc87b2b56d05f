"""Officers: listing, the permission check for every page and action, disabling, and the time
limits the web layer enforces."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pwa_server.officers.ceremonies import origin_of
from pwa_server.officers.errors import (
    LastSecurityOfficerError,
    OfficerDisabledError,
    OfficerError,
    OfficerNotFoundError,
    PermissionDeniedError,
)
from pwa_server.officers.models import Officer
from pwa_server.officers.policy import (
    IDLE_TIMEOUT,
    STEP_UP_MAX_AGE,
    idle_expired,
    step_up_fresh,
)
from pwa_server.officers.roles import Permission, Role, can
from pwa_server.officers.service import OfficerService
from pwa_server.settings import Settings
from tests.officers.authenticator import SoftwareAuthenticator
from tests.officers.conftest import ORIGIN, START, Clock, Member, Team, register


def second_security_officer(service: OfficerService, clock: Clock, first: Member) -> Officer:
    link = service.invitations.invite(
        by_officer_id=first.officer.id,
        role=Role.SECURITY_OFFICER,
        display_name="Bo Security",
        now=clock(),
    )
    return register(service, SoftwareAuthenticator(ORIGIN), link.token, clock())


def test_officers_are_listed_in_the_order_they_registered(
    service: OfficerService, team: Team
) -> None:
    listed = service.roster.officers()

    assert [(officer.display_name, officer.role) for officer in listed] == [
        ("Aiko Security", Role.SECURITY_OFFICER),
        ("Ren", Role.REGISTRATION_OFFICER),
        ("Aya", Role.AUDITOR),
    ]
    assert service.roster.officer(listed[1].id) == listed[1]
    assert service.roster.has_officers()


def test_an_unknown_officer_is_not_found(service: OfficerService) -> None:
    assert not service.roster.has_officers()
    with pytest.raises(OfficerNotFoundError):
        service.roster.officer("nobody")


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("member", ["security", "registration", "auditor"])
def test_require_grants_exactly_what_the_role_can(
    service: OfficerService, team: Team, member: str, permission: Permission
) -> None:
    officer = getattr(team, member).officer

    if can(officer.role, permission):
        assert service.roster.require(officer_id=officer.id, permission=permission) == officer
    else:
        with pytest.raises(PermissionDeniedError):
            service.roster.require(officer_id=officer.id, permission=permission)


def test_a_disabled_officer_may_do_nothing(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    disabled = service.roster.disable(
        by_officer_id=team.security.officer.id, officer_id=team.auditor.officer.id, now=clock()
    )

    assert (disabled.status, disabled.active) == ("disabled", False)
    assert not disabled.can(Permission.VIEW_CONSOLE)
    with pytest.raises(OfficerDisabledError):
        service.roster.require(
            officer_id=team.auditor.officer.id, permission=Permission.VIEW_CONSOLE
        )
    with pytest.raises(OfficerDisabledError):
        service.keys.add_options(officer_id=team.auditor.officer.id, now=clock())


def test_an_officer_is_disabled_once(service: OfficerService, clock: Clock, team: Team) -> None:
    service.roster.disable(
        by_officer_id=team.security.officer.id, officer_id=team.auditor.officer.id, now=clock()
    )

    with pytest.raises(OfficerDisabledError):
        service.roster.disable(
            by_officer_id=team.security.officer.id,
            officer_id=team.auditor.officer.id,
            now=clock(),
        )


@pytest.mark.parametrize("member", ["registration", "auditor"])
def test_only_who_may_manage_officers_disables_them(
    service: OfficerService, clock: Clock, team: Team, member: str
) -> None:
    with pytest.raises(PermissionDeniedError):
        service.roster.disable(
            by_officer_id=getattr(team, member).officer.id,
            officer_id=team.security.officer.id,
            now=clock(),
        )
    assert service.roster.officer(team.security.officer.id).active


def test_the_last_active_security_officer_cannot_be_disabled(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    with pytest.raises(LastSecurityOfficerError):
        service.roster.disable(
            by_officer_id=first.officer.id, officer_id=first.officer.id, now=clock()
        )
    assert service.roster.officer(first.officer.id).active


def test_one_of_two_security_officers_can_be_disabled_and_then_not_the_other(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    second = second_security_officer(service, clock, first)

    service.roster.disable(by_officer_id=second.id, officer_id=first.officer.id, now=clock())

    with pytest.raises(LastSecurityOfficerError):
        service.roster.disable(by_officer_id=second.id, officer_id=second.id, now=clock())


def test_two_security_officers_disabling_each_other_at_once_leave_one_active(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    second = second_security_officer(service, clock, first)
    now = clock()
    barrier = threading.Barrier(2)
    refusals: list[OfficerError] = []

    def disable(by: str, target: str) -> None:
        barrier.wait()
        try:
            service.roster.disable(by_officer_id=by, officer_id=target, now=now)
        except OfficerError as error:
            refusals.append(error)

    threads = [
        threading.Thread(target=disable, args=(first.officer.id, second.id)),
        threading.Thread(target=disable, args=(second.id, first.officer.id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    active = [officer for officer in service.roster.officers() if officer.active]
    assert [officer.role for officer in active] == [Role.SECURITY_OFFICER]
    assert len(refusals) == 1


def test_the_last_registration_officer_or_auditor_can_be_disabled(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    for member in (team.registration, team.auditor):
        service.roster.disable(
            by_officer_id=team.security.officer.id, officer_id=member.officer.id, now=clock()
        )

    assert [officer.active for officer in service.roster.officers()] == [True, False, False]


def test_a_console_idle_for_the_timeout_signs_out() -> None:
    assert not idle_expired(START, now=START + IDLE_TIMEOUT - dt.timedelta(seconds=1))
    assert idle_expired(START, now=START + IDLE_TIMEOUT)


def test_a_step_up_allows_sensitive_actions_for_a_short_while() -> None:
    assert step_up_fresh(START, now=START)
    assert step_up_fresh(START, now=START + STEP_UP_MAX_AGE - dt.timedelta(seconds=1))
    assert not step_up_fresh(START, now=START + STEP_UP_MAX_AGE)
    assert not step_up_fresh(None, now=START)
    assert not step_up_fresh(START + dt.timedelta(hours=1), now=START)
    assert STEP_UP_MAX_AGE < IDLE_TIMEOUT


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://console.example", "https://console.example"),
        ("https://Console.Example:443/base/", "https://console.example"),
        ("https://localhost:8443", "https://localhost:8443"),
        ("http://localhost:80", "http://localhost"),
    ],
)
def test_the_origin_is_written_as_browsers_write_it(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_the_service_for_an_instance_uses_its_public_url(engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, public_url="https://pki.example.org:8443/shomei")

    service = OfficerService.from_settings(settings, engine)

    assert service.party.rp_id == "pki.example.org"
    assert service.party.origin == "https://pki.example.org:8443"
    link = service.invitations.bootstrap(now=START)
    assert link.url.startswith("https://pki.example.org:8443/shomei/officer/register/")
