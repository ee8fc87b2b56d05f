"""Signing in with a WebAuthn key, and the step-up: a fresh assertion by the signed-in
officer before a sensitive action."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from pwa_server.officers import assertions, ceremonies
from pwa_server.officers.ceremonies import Ceremony, RelyingParty
from pwa_server.officers.keys import OfficerKeys
from pwa_server.officers.models import Officer
from pwa_server.officers.roster import Roster


class SignIn:
    """Assertions by the keys in `keys` of the officers on `roster`, for `party`."""

    def __init__(
        self, engine: Engine, party: RelyingParty, roster: Roster, keys: OfficerKeys
    ) -> None:
        self.engine = engine
        self.party = party
        self.roster = roster
        self.keys = keys

    def options(self, *, now: datetime) -> Ceremony:
        """Options to sign in with any discoverable key of this RP (no name typed)."""
        return ceremonies.authentication_options(self.party, allow=(), now=now)

    def step_up_options(self, *, officer_id: str, now: datetime) -> Ceremony:
        """Options for a fresh assertion by the signed-in officer: only their keys are allowed."""
        self.roster.active(officer_id)
        allowed = self.keys.known(officer_id)
        return ceremonies.authentication_options(self.party, allow=allowed, now=now)

    def authenticate(
        self, *, credential_json: str, expected_challenge: bytes, now: datetime
    ) -> Officer:
        """Sign in: the officer whose registered key made this assertion."""
        row = assertions.verify_assertion(
            self.engine,
            self.party,
            credential_json=credential_json,
            expected_challenge=expected_challenge,
            officer_id=None,
            now=now,
        )
        return Officer.from_row(row)

    def step_up(
        self, *, officer_id: str, credential_json: str, expected_challenge: bytes, now: datetime
    ) -> Officer:
        """A fresh assertion before a sensitive action: as `authenticate`, the key must be one
        of `officer_id`'s and the challenge at most STEP_UP_MAX_AGE old."""
        row = assertions.verify_step_up(
            self.engine,
            self.party,
            officer_id=officer_id,
            credential_json=credential_json,
            expected_challenge=expected_challenge,
            now=now,
        )
        return Officer.from_row(row)
