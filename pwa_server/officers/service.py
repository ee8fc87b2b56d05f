"""Officers over the database, in parts: the roster, invitations (with registration), keys,
sign-in and step-up, console sessions and the sign-in refusal counts.

Every method takes the time as `now`. WebAuthn challenges are not stored here: the web layer
keeps each one in the signed session and hands it back as `expected_challenge`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import Engine

from pwa_server.officers.ceremonies import RelyingParty, origin_of
from pwa_server.officers.invitations import Invitations
from pwa_server.officers.keys import OfficerKeys
from pwa_server.officers.refusals import SignInRefusals
from pwa_server.officers.roster import Roster
from pwa_server.officers.sessions import OfficerSessions
from pwa_server.officers.sign_in import SignIn
from pwa_server.settings import Settings


class OfficerService:
    """Officers, their keys and invitations; WebAuthn for relying party `rp_id` at `origin`.

    `public_url` is where invitation links point (default: `origin`).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        rp_id: str,
        rp_name: str,
        origin: str,
        public_url: str | None = None,
        security_officer_approvals: int = 2,
    ) -> None:
        self.engine = engine
        self.party = RelyingParty(rp_id=rp_id, rp_name=rp_name, origin=origin)
        self.roster = Roster(engine)
        self.invitations = Invitations(
            engine,
            self.party,
            self.roster,
            public_url=(public_url or origin).rstrip("/"),
            security_officer_approvals=security_officer_approvals,
        )
        self.keys = OfficerKeys(engine, self.party, self.roster)
        self.sign_in = SignIn(engine, self.party, self.roster, self.keys)
        self.sessions = OfficerSessions(engine)
        self.refusals = SignInRefusals(engine)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> OfficerService:
        """The service for this instance: the RP id is the public URL's host name."""
        public_url = settings.effective_public_url
        return cls(
            engine,
            rp_id=urlsplit(public_url).hostname or "localhost",
            rp_name=settings.ca_organization,
            origin=origin_of(public_url),
            public_url=public_url,
            security_officer_approvals=settings.ceremony_approvals,
        )
