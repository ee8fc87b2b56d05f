"""Who caused an event, as callers pass it down to the code that records it."""

from __future__ import annotations

from dataclasses import dataclass

from pwa_server.audit.actions import ActorKind


@dataclass(frozen=True)
class Actor:
    """The kind of actor and its name (officer id, site name, enrollment id, command).

    Domain methods that officers, sites and the CLI call take one, so that the event they
    record names whoever asked, not the code path that happened to run.
    """

    kind: ActorKind
    name: str

    @classmethod
    def officer(cls, officer_id: str) -> Actor:
        # The id, as the console's own events name officers.
        return cls(ActorKind.OFFICER, officer_id)

    @classmethod
    def site(cls, site_name: str) -> Actor:
        return cls(ActorKind.SITE, site_name)

    @classmethod
    def user(cls, enrollment_id: str) -> Actor:
        return cls(ActorKind.USER, enrollment_id)


# The `shomei` command line: the default actor of administrative calls that name no other.
CLI = Actor(ActorKind.SYSTEM, "cli")
