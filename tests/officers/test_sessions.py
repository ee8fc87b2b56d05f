"""Console sessions kept on the server: ended by signing out, idling, their lifetime, from
another session, or with the officer; "last seen" written at most once a minute."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from pwa_server.audit import events
from pwa_server.officers.policy import IDLE_TIMEOUT, SESSION_LIFETIME
from pwa_server.officers.service import OfficerService
from pwa_server.officers.sessions import session_id
from pwa_server.store.tables import officer_sessions
from tests.officers.conftest import Clock, Member, Team


def start(
    service: OfficerService, member: Member, now: dt.datetime, client: str = "192.0.2.1"
) -> str:
    return service.sessions.start(
        member.officer.id, client=client, user_agent="Mozilla/5.0 test", now=now
    )


def stored(service: OfficerService, token: str) -> dict[str, object]:
    with service.engine.connect() as connection:
        row = connection.execute(
            select(officer_sessions).where(officer_sessions.c.id == session_id(token))
        ).one()
    return dict(row._mapping)


def test_the_database_keeps_only_the_hash_of_the_session_token(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    token = start(service, first, clock())

    row = stored(service, token)
    assert row["id"] != token
    assert len(str(row["id"])) == 64
    assert (row["officer_id"], row["client_address"]) == (first.officer.id, "192.0.2.1")
    resumed = service.sessions.resume(token, now=clock())
    assert resumed is not None
    assert resumed.officer_id == first.officer.id


def test_a_session_signed_out_is_not_resumed_and_sign_in_and_out_are_audited(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    token = start(service, first, clock())

    service.sessions.end(token, client="192.0.2.1", now=clock())

    assert service.sessions.resume(token, now=clock()) is None
    assert stored(service, token)["end_reason"] == "signed_out"
    actions = [event.action for event in events(service.engine, limit=2, subject=first.officer.id)]
    assert actions == ["officer.signed_out", "officer.signed_in"]


def test_a_session_idle_for_the_timeout_ends(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    token = start(service, first, clock())
    clock.advance(IDLE_TIMEOUT)

    assert service.sessions.resume(token, now=clock()) is None
    assert stored(service, token)["end_reason"] == "idle"
    clock.advance(-IDLE_TIMEOUT)
    assert service.sessions.resume(token, now=clock()) is None


def test_a_session_in_use_ends_after_its_lifetime(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    started = clock()
    token = start(service, first, started)
    # Used every five minutes, never idle, until a minute before the lifetime ends.
    while clock.current + dt.timedelta(minutes=6) < started + SESSION_LIFETIME:
        clock.advance(dt.timedelta(minutes=5))
        assert service.sessions.resume(token, now=clock()) is not None

    assert service.sessions.resume(token, now=started + SESSION_LIFETIME) is None
    assert stored(service, token)["end_reason"] == "expired"


def test_last_seen_is_written_at_most_once_a_minute(
    service: OfficerService, clock: Clock, first: Member
) -> None:
    token = start(service, first, clock())
    started = stored(service, token)["last_seen_at"]

    for _ in range(30):
        service.sessions.resume(token, now=clock())
    assert stored(service, token)["last_seen_at"] == started
    clock.advance(dt.timedelta(seconds=30))
    service.sessions.resume(token, now=clock())
    assert stored(service, token)["last_seen_at"] == clock.current


def test_signing_out_everywhere_else_ends_the_other_sessions_only(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    here = start(service, team.security, clock())
    phone = start(service, team.security, clock(), client="198.51.100.9")
    laptop = start(service, team.security, clock())
    colleague = start(service, team.auditor, clock())

    ended = service.sessions.end_others(
        here, officer_id=team.security.officer.id, client="192.0.2.1", now=clock()
    )

    assert ended == 2
    assert service.sessions.resume(here, now=clock()) is not None
    assert service.sessions.resume(phone, now=clock()) is None
    assert service.sessions.resume(laptop, now=clock()) is None
    assert service.sessions.resume(colleague, now=clock()) is not None
    listed = service.sessions.open_sessions(team.security.officer.id, now=clock())
    assert [session.id for session in listed] == [session_id(here)]
    [event] = events(service.engine, limit=1, action="officer.sessions_ended")
    assert event.subject == team.security.officer.id


def test_disabling_an_officer_ends_their_sessions(
    service: OfficerService, clock: Clock, team: Team
) -> None:
    token = start(service, team.auditor, clock())

    service.roster.disable(
        by_officer_id=team.security.officer.id, officer_id=team.auditor.officer.id, now=clock()
    )

    assert service.sessions.resume(token, now=clock()) is None
    assert stored(service, token)["end_reason"] == "officer_disabled"


@pytest.mark.parametrize("token", ["", "not-a-token"])
def test_an_unknown_token_resumes_nothing(
    service: OfficerService, clock: Clock, first: Member, token: str
) -> None:
    assert service.sessions.resume(token, now=clock()) is None
