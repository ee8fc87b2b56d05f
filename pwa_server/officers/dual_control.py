"""Dual control: how many security officers must approve an act. A key ceremony needs M
approvals of distinct security officers, but never more than there are active ones (at least
one). An officer who could invite a second "security officer" (their own second key) alone
would then pass dual control alone; so an invitation of a security officer needs the same
approvals, the inviter's counted. While there is one security officer (the first two
officers: bootstrap), an invitation works at once; its event records the approvals it
needed (1)."""

from __future__ import annotations

from sqlalchemy import Connection

from pwa_server.officers.key_ceremony_models import approver_roles
from pwa_server.officers.roles import Role
from pwa_server.store.ceremonies import count_active_officers
from pwa_server.store.officers import InvitationRow, invitation_approvers


def security_officer_approvals(connection: Connection, approvals: int) -> int:
    """The approvals an act under dual control needs now: `approvals` (M), but never more
    than the active security officers, and at least 1."""
    return max(1, min(approvals, count_active_officers(connection, approver_roles())))


def approvals_required(connection: Connection, role: Role, approvals: int) -> int:
    """The approvals an invitation to `role` made now needs, the inviter's included."""
    if role is not Role.SECURITY_OFFICER:
        return 1
    return security_officer_approvals(connection, approvals)


def missing_approvals(connection: Connection, invitation: InvitationRow) -> int:
    """How many more security officers (active, not the inviter) must approve the link."""
    if invitation.approvals_required <= 1:
        return 0
    others = [
        officer_id
        for officer_id in invitation_approvers(
            connection, invitation.id, role=Role.SECURITY_OFFICER.value
        )
        if officer_id != invitation.created_by
    ]
    return max(0, invitation.approvals_required - 1 - len(others))
