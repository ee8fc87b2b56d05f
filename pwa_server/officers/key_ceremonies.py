"""Key ceremonies under dual control: a new issuing CA, or retiring one, runs only after M
distinct security officers approved it.

A security officer proposes a ceremony (which counts as their approval); others approve it,
each after a fresh WebAuthn assertion that the web layer checks with `SignIn.step_up`
before calling here; once enough approved, a security officer executes it. M is the setting
`ceremony_approvals`, but never more than the active security officers when the ceremony is
proposed: with one security officer, dual control is off and the console says so. Proposals
expire. Every step is an audit event written in the transaction of the change it records.

The roles are checked here too, not only by the web layer: a domain call by any other route
is held to the same rules.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine

from hsm import Token
from pwa_server.audit import AuditAction
from pwa_server.officers import key_ceremony_execution as execution
from pwa_server.officers.dual_control import security_officer_approvals
from pwa_server.officers.errors import (
    AlreadyApprovedError,
    CeremonyFailedError,
    InvalidCeremonyError,
    OfficerError,
)
from pwa_server.officers.key_ceremony_models import (
    KeyCeremony,
    key_ceremony_from_rows,
)
from pwa_server.officers.key_ceremony_records import (
    MAX_ERROR,
    audit,
    check_approved,
    closed,
    load_ceremony,
    open_ceremony,
    require_officer,
)
from pwa_server.officers.roles import Permission
from pwa_server.pki import rollover
from pwa_server.settings import Settings
from pwa_server.store import ceremonies as store
from pwa_server.vocabulary import CeremonyKind, CeremonyStatus


class KeyCeremonies:
    """Key ceremonies on the CA of `engine`, whose keys are made in `token`."""

    def __init__(
        self,
        engine: Engine,
        token: Token,
        *,
        approvals_required: int,
        proposal_lifetime: dt.timedelta,
        organization: str,
    ) -> None:
        if approvals_required < 1:
            raise ValueError("a key ceremony needs at least one approval")
        if proposal_lifetime <= dt.timedelta(0):
            raise ValueError("a key ceremony proposal must stay open for some time")
        self.engine = engine
        self.token = token
        self.approvals_required = approvals_required
        self.proposal_lifetime = proposal_lifetime
        self.organization = organization

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine, token: Token) -> KeyCeremonies:
        """The ceremonies of this instance, with its configured M and proposal lifetime."""
        return cls(
            engine,
            token,
            approvals_required=settings.ceremony_approvals,
            proposal_lifetime=dt.timedelta(hours=settings.ceremony_proposal_hours),
            organization=settings.ca_organization,
        )

    # Reading

    def required_approvals(self) -> int:
        """The approvals a ceremony proposed now would need: M, but never more than the
        active security officers (and at least 1)."""
        with self.engine.connect() as connection:
            return self._required(connection)

    def dual_control_active(self) -> bool:
        """False when a ceremony proposed now would need one approval only: fewer than two
        active security officers (or M configured as 1). The console must then say that
        dual control is off."""
        return self.required_approvals() >= 2

    def ceremony(self, ceremony_id: int, *, now: dt.datetime) -> KeyCeremony:
        """The ceremony with that id; CeremonyNotFoundError when there is none."""
        with self.engine.connect() as connection:
            return load_ceremony(connection, ceremony_id, now)

    def ceremonies(self, *, now: dt.datetime, limit: int = 50) -> list[KeyCeremony]:
        """The newest ceremonies first."""
        with self.engine.connect() as connection:
            rows = store.recent_ceremonies(connection, limit=limit)
            approvals = store.approvals_of(connection, [row.id for row in rows])
        return [key_ceremony_from_rows(row, approvals, now) for row in rows]

    # Steps

    def propose(
        self,
        *,
        officer_id: str,
        kind: CeremonyKind,
        target: int | None = None,
        now: dt.datetime,
    ) -> KeyCeremony:
        """Propose a ceremony; the proposal is the proposer's approval.

        NEW_ISSUING_CA replaces the issuing CA active now (`target`, if given, must be that
        one); RETIRE_ISSUING_CA needs `target`, an active issuing CA that is not the last.
        """
        kind = _kind(kind)
        with self.engine.begin() as connection:
            officer = require_officer(
                connection, officer_id, Permission.MANAGE_CA, Permission.APPROVE_CEREMONY
            )
            target = _target(connection, kind, target)
            required = self._required(connection)
            ceremony_id = store.insert_ceremony(
                connection,
                kind=kind,
                target_authority_id=target,
                proposed_by=officer.id,
                proposed_at=now,
                expires_at=now + self.proposal_lifetime,
                required_approvals=required,
            )
            store.insert_approval(
                connection, ceremony_id=ceremony_id, officer_id=officer.id, now=now
            )
            audit(
                connection,
                officer.id,
                AuditAction.APPROVAL_REQUESTED,
                ceremony_id,
                now,
                {
                    "kind": kind.value,
                    "target_authority_id": target,
                    "required_approvals": required,
                    "dual_control": required >= 2,
                    "expires_at": (now + self.proposal_lifetime).isoformat(),
                },
            )
            return load_ceremony(connection, ceremony_id, now)

    def approve(self, *, ceremony_id: int, officer_id: str, now: dt.datetime) -> KeyCeremony:
        """One more security officer's approval; the same officer twice is refused."""
        self._expire_due(now)
        with self.engine.begin() as connection:
            officer = require_officer(connection, officer_id, Permission.APPROVE_CEREMONY)
            ceremony = open_ceremony(connection, ceremony_id, now)
            if not store.insert_approval(
                connection, ceremony_id=ceremony.id, officer_id=officer.id, now=now
            ):
                raise AlreadyApprovedError(ceremony.id)
            approved = load_ceremony(connection, ceremony.id, now)
            audit(
                connection,
                officer.id,
                AuditAction.APPROVAL_GRANTED,
                ceremony.id,
                now,
                {
                    "kind": ceremony.kind.value,
                    "approvals": len(approved.approved_by),
                    "required_approvals": approved.required_approvals,
                },
            )
            return approved

    def reject(
        self, *, ceremony_id: int, officer_id: str, now: dt.datetime, reason: str | None = None
    ) -> KeyCeremony:
        """Close an open ceremony unexecuted; any security officer may, the proposer too."""
        self._expire_due(now)
        text = " ".join(reason.split())[:MAX_ERROR] if reason else None
        with self.engine.begin() as connection:
            officer = require_officer(connection, officer_id, Permission.APPROVE_CEREMONY)
            ceremony = open_ceremony(connection, ceremony_id, now)
            if not store.close_ceremony(
                connection,
                ceremony.id,
                status=CeremonyStatus.REJECTED,
                closed_by=officer.id,
                now=now,
                result=text,
            ):
                raise closed(connection, ceremony.id, now)
            audit(
                connection,
                officer.id,
                AuditAction.APPROVAL_REJECTED,
                ceremony.id,
                now,
                {"kind": ceremony.kind.value, "reason": text},
            )
            return load_ceremony(connection, ceremony.id, now)

    def execute(self, *, ceremony_id: int, officer_id: str, now: dt.datetime) -> KeyCeremony:
        """Run an open ceremony that enough security officers approved, once.

        A failure (the token, the database, a CA that changed since the proposal) marks the
        ceremony failed with the error and raises CeremonyFailedError; no half-made CA stays.
        Refusals that change nothing (not allowed, not approved enough, closed) raise their
        own errors and leave the ceremony open.
        """
        self._expire_due(now)
        with self.engine.connect() as connection:
            officer = require_officer(connection, officer_id, Permission.MANAGE_CA)
            ceremony = open_ceremony(connection, ceremony_id, now)
        check_approved(ceremony)
        try:
            if ceremony.kind is CeremonyKind.NEW_ISSUING_CA:
                execution.new_issuing_ca(
                    self.engine,
                    self.token,
                    ceremony,
                    officer.id,
                    now,
                    organization=self.organization,
                )
            else:
                execution.retire_issuing_ca(self.engine, ceremony, officer.id, now)
        except OfficerError:
            raise  # refused before anything changed: closed meanwhile, approvals withdrawn
        except Exception as error:
            message = execution.record_failure(self.engine, ceremony, officer.id, error, now)
            raise CeremonyFailedError(ceremony.id, message) from error
        return self.ceremony(ceremony.id, now=now)

    # Internals

    def _required(self, connection: Connection) -> int:
        return security_officer_approvals(connection, self.approvals_required)

    def _expire_due(self, now: dt.datetime) -> None:
        # Its own transaction: the refusal that follows must not roll the expiry back.
        with self.engine.begin() as connection:
            store.expire_due_ceremonies(connection, now=now)


def _kind(kind: str) -> CeremonyKind:
    try:
        return CeremonyKind(kind)
    except ValueError:
        raise InvalidCeremonyError(f"unknown kind of key ceremony: {kind!r}") from None


def _target(connection: Connection, kind: CeremonyKind, target: int | None) -> int | None:
    """The CA the ceremony changes, checked now so that a hopeless proposal is never made."""
    try:
        if kind is CeremonyKind.NEW_ISSUING_CA:
            current = rollover.active_issuing_id(connection)
            if target is not None and target != current:
                raise InvalidCeremonyError(
                    f"issuing CA {target} is not the active one: a new CA replaces the active one"
                )
            return current
        if target is None:
            raise InvalidCeremonyError("name the issuing CA to retire")
        rollover.check_retirable(connection, target)
    except rollover.RolloverError as error:
        raise InvalidCeremonyError(str(error)) from None
    return target
