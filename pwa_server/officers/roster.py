"""The roster of officers: who they are, whether they are active, what their role allows, and
disabling one (not the last active security officer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from pwa_server.officers.errors import (
    LastSecurityOfficerError,
    OfficerDisabledError,
    OfficerNotFoundError,
    PermissionDeniedError,
)
from pwa_server.officers.models import Officer
from pwa_server.officers.roles import Permission, Role
from pwa_server.officers.sessions import end_sessions_of_disabled
from pwa_server.store import officers as store
from pwa_server.vocabulary import AccountStatus


class Roster:
    """The officers in the database of `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def has_officers(self) -> bool:
        """True once the first officer registered."""
        with self.engine.connect() as connection:
            return store.any_officer(connection)

    def officer(self, officer_id: str) -> Officer:
        """The officer with that id."""
        with self.engine.connect() as connection:
            row = store.officer_by_id(connection, officer_id)
        if row is None:
            raise OfficerNotFoundError(f"no officer {officer_id}")
        return Officer.from_row(row)

    def officers(self) -> list[Officer]:
        """Every officer, the earliest registered first."""
        with self.engine.connect() as connection:
            return [Officer.from_row(row) for row in store.all_officers(connection)]

    def active(self, officer_id: str) -> Officer:
        """The officer with that id; OfficerDisabledError when they are disabled."""
        officer = self.officer(officer_id)
        if not officer.active:
            raise OfficerDisabledError(f"officer {officer_id} is disabled")
        return officer

    def require(self, *, officer_id: str, permission: Permission) -> Officer:
        """The officer, if active and allowed `permission`: for every page and action."""
        officer = self.active(officer_id)
        if not officer.can(permission):
            raise PermissionDeniedError(officer.role.value, permission.value)
        return officer

    def disable(self, *, by_officer_id: str, officer_id: str, now: datetime) -> Officer:
        """Disable an officer (not the last active security officer); their open invitations
        and console sessions end with it. Only who may MANAGE_OFFICERS."""
        self.require(officer_id=by_officer_id, permission=Permission.MANAGE_OFFICERS)
        target = self.officer(officer_id)
        with self.engine.begin() as connection:
            if target.role is Role.SECURITY_OFFICER:
                disabled = store.disable_officer_unless_last(
                    connection, officer_id, role=Role.SECURITY_OFFICER.value
                )
            else:
                disabled = store.disable_officer(connection, officer_id)
            if not disabled:
                latest = store.officer_by_id(connection, officer_id)
                if latest is None or latest.status != AccountStatus.ACTIVE:
                    raise OfficerDisabledError(f"officer {officer_id} is disabled already")
                raise LastSecurityOfficerError(
                    "the last active security officer cannot be disabled"
                )
            store.expire_open_invitations(connection, created_by=officer_id, now=now)
            end_sessions_of_disabled(connection, officer_id, now)
        return self.officer(officer_id)
