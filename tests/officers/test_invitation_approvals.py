"""Dual control over who becomes a security officer: a security officer who invites a second
"security officer" (their own second key) needs another security officer's approval first,
so that they cannot approve key ceremonies alone; the first two officers (bootstrap) join at
once, and the invitation's event says so."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from pwa_server.audit import events
from pwa_server.officers.errors import (
    InvitationApprovalRefusedError,
    InvitationAwaitingApprovalError,
    PermissionDeniedError,
)
from pwa_server.officers.roles import Role
from pwa_server.officers.service import OfficerService
from tests.officers.authenticator import SoftwareAuthenticator
from tests.officers.conftest import ORIGIN, RP_ID, Clock, Member, Team, register


@pytest.fixture
def second(service: OfficerService, clock: Clock, first: Member) -> Member:
    """The second security officer, invited while the first was alone (bootstrap)."""
    link = service.invitations.invite(
        by_officer_id=first.officer.id,
        role=Role.SECURITY_OFFICER,
        display_name="Kenji Security",
        now=clock(),
    )
    key = SoftwareAuthenticator(ORIGIN)
    return Member(register(service, key, link.token, clock()), key)


def invited_events(service: OfficerService) -> list[dict[str, object]]:
    return [
        json.loads(event.details or "{}")
        for event in events(service.engine, limit=10, action="officer.invited")
    ]


def test_a_security_officer_inviting_a_second_self_cannot_register_it_alone(
    service: OfficerService, clock: Clock, first: Member, second: Member
) -> None:
    sockpuppet = SoftwareAuthenticator(ORIGIN)
    link = service.invitations.invite(
        by_officer_id=first.officer.id,
        role=Role.SECURITY_OFFICER,
        display_name="Aiko Again",
        now=clock(),
    )
    [pending] = service.invitations.pending(now=clock())

    with pytest.raises(InvitationAwaitingApprovalError):
        register(service, sockpuppet, link.token, clock())
    with pytest.raises(InvitationApprovalRefusedError, match="another security officer"):
        service.invitations.approve(
            by_officer_id=first.officer.id, invitation_id=pending.id, now=clock()
        )
    with pytest.raises(InvitationAwaitingApprovalError):
        register(service, sockpuppet, link.token, clock())
    assert [officer.display_name for officer in service.roster.officers()] == [
        "Aiko Security",
        "Kenji Security",
    ]
    assert link.awaiting_approvals == 1
    assert service.invitations.offer(token=link.token, now=clock()).awaiting_approvals == 1


def test_another_security_officers_approval_lets_the_invited_one_register(
    service: OfficerService, clock: Clock, first: Member, second: Member
) -> None:
    link = service.invitations.invite(
        by_officer_id=first.officer.id, role=Role.SECURITY_OFFICER, display_name="Mei", now=clock()
    )
    [pending] = service.invitations.pending(now=clock())

    service.invitations.approve(
        by_officer_id=second.officer.id, invitation_id=pending.id, now=clock()
    )

    assert service.invitations.pending(now=clock()) == []
    joined = register(service, SoftwareAuthenticator(ORIGIN), link.token, clock())
    assert joined.role is Role.SECURITY_OFFICER
    [approval] = events(service.engine, limit=1, action="approval.granted")
    assert (approval.actor, approval.subject_kind, approval.subject) == (
        second.officer.id,
        "invitation",
        str(pending.id),
    )


def test_the_second_security_officer_of_the_bootstrap_joins_at_once_and_is_audited(
    service: OfficerService, clock: Clock, first: Member, second: Member
) -> None:
    assert second.officer.role is Role.SECURITY_OFFICER
    assert invited_events(service) == [{"role": "security_officer", "approvals_required": 1}]


def test_invitations_of_other_roles_need_no_approval(
    service: OfficerService, clock: Clock, first: Member, second: Member
) -> None:
    link = service.invitations.invite(
        by_officer_id=first.officer.id, role=Role.AUDITOR, display_name="Aya", now=clock()
    )

    assert service.invitations.pending(now=clock()) == []
    assert register(service, SoftwareAuthenticator(ORIGIN), link.token, clock()).active
    assert invited_events(service)[0] == {"role": "auditor", "approvals_required": 1}


def test_an_invitation_needs_m_approvals_each_counted_once(
    engine: Engine, clock: Clock, team: Team
) -> None:
    service = OfficerService(
        engine, rp_id=RP_ID, rp_name="Shomei", origin=ORIGIN, security_officer_approvals=3
    )
    members = [team.security]
    for name in ("Kenji", "Mei"):
        link = service.invitations.invite(
            by_officer_id=team.security.officer.id,
            role=Role.SECURITY_OFFICER,
            display_name=name,
            now=clock(),
        )
        for pending in service.invitations.pending(now=clock()):
            service.invitations.approve(
                by_officer_id=members[-1].officer.id, invitation_id=pending.id, now=clock()
            )
        key = SoftwareAuthenticator(ORIGIN)
        members.append(Member(register(service, key, link.token, clock()), key))
    link = service.invitations.invite(
        by_officer_id=team.security.officer.id,
        role=Role.SECURITY_OFFICER,
        display_name="Yui",
        now=clock(),
    )
    [pending] = service.invitations.pending(now=clock())
    kenji, mei = members[1].officer.id, members[2].officer.id

    service.invitations.approve(by_officer_id=kenji, invitation_id=pending.id, now=clock())
    with pytest.raises(InvitationApprovalRefusedError, match="already"):
        service.invitations.approve(by_officer_id=kenji, invitation_id=pending.id, now=clock())
    with pytest.raises(PermissionDeniedError):
        service.invitations.approve(
            by_officer_id=team.auditor.officer.id, invitation_id=pending.id, now=clock()
        )
    with pytest.raises(InvitationAwaitingApprovalError):
        register(service, SoftwareAuthenticator(ORIGIN), link.token, clock())
    service.invitations.approve(by_officer_id=mei, invitation_id=pending.id, now=clock())
    assert register(service, SoftwareAuthenticator(ORIGIN), link.token, clock()).active
