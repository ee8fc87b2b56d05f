"""What a key ceremony is, as the console and the domain see it (key_ceremonies runs them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pwa_server.officers.roles import PERMISSIONS, Permission
from pwa_server.store.ceremonies import ApprovalRow, CeremonyRow
from pwa_server.vocabulary import AccountStatus, CeremonyKind, CeremonyStatus


@dataclass(frozen=True)
class Approval:
    """One officer's approval; it counts while they are an active security officer."""

    officer_id: str
    approved_at: dt.datetime
    counts: bool


@dataclass(frozen=True)
class KeyCeremony:
    """A key ceremony as the console shows it."""

    id: int
    kind: CeremonyKind
    # The issuing CA it retires, or that the new one replaces (None: there was none).
    target_authority_id: int | None
    proposed_by: str
    proposed_at: dt.datetime
    expires_at: dt.datetime
    required_approvals: int
    status: CeremonyStatus  # EXPIRED as soon as the time is over, even before it is stored
    closed_by: str | None  # who executed or rejected it
    closed_at: dt.datetime | None
    result: str | None  # the new or retired CA's fingerprint, or the error
    approvals: tuple[Approval, ...]  # the earliest first; the proposer's is the first

    @property
    def approved_by(self) -> tuple[str, ...]:
        """The officers whose approvals count now."""
        return tuple(approval.officer_id for approval in self.approvals if approval.counts)

    @property
    def missing_approvals(self) -> int:
        """How many more distinct security officers must approve before it can be executed."""
        return max(0, self.required_approvals - len(self.approved_by))

    @property
    def dual_control(self) -> bool:
        """False when one officer alone could propose and execute it."""
        return self.required_approvals >= 2

    @property
    def executable(self) -> bool:
        return self.status is CeremonyStatus.OPEN and self.missing_approvals == 0


def approver_roles() -> list[str]:
    """The roles that grant APPROVE_CEREMONY (the security officer's, today)."""
    return [
        role.value
        for role, granted in PERMISSIONS.items()
        if Permission.APPROVE_CEREMONY in granted
    ]


def key_ceremony_from_rows(
    row: CeremonyRow, approvals: Sequence[ApprovalRow], now: dt.datetime
) -> KeyCeremony:
    """The ceremony of `row` with its approvals among `approvals`, as it stands at `now`."""
    roles = approver_roles()
    status = row.status
    if status is CeremonyStatus.OPEN and now >= row.expires_at:
        status = CeremonyStatus.EXPIRED
    return KeyCeremony(
        id=row.id,
        kind=row.kind,
        target_authority_id=row.target_authority_id,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        expires_at=row.expires_at,
        required_approvals=row.required_approvals,
        status=status,
        closed_by=row.closed_by,
        closed_at=row.closed_at,
        result=row.result,
        approvals=tuple(
            Approval(
                approval.officer_id,
                approval.approved_at,
                approval.officer_status == AccountStatus.ACTIVE and approval.officer_role in roles,
            )
            for approval in approvals
            if approval.ceremony_id == row.id
        ),
    )
