"""Refused sign-ins counted per client address and minute, written as one audit event each."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine

from pwa_server.audit import events
from pwa_server.officers.refusals import SignInRefusals

MINUTE_START = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)


def refused_events(engine: Engine) -> list[dict[str, object]]:
    return [
        json.loads(event.details or "{}")
        for event in events(engine, limit=100, action="officer.sign_in_failed")
    ]


def test_fifty_refused_sign_ins_from_one_address_in_a_minute_are_one_event_with_count_50(
    engine: Engine,
) -> None:
    refusals = SignInRefusals(engine)
    for second in range(50):
        reason = "UnknownCredentialError" if second % 2 else "ChallengeExpiredError"
        refusals.count(
            client="203.0.113.5", reason=reason, now=MINUTE_START + dt.timedelta(seconds=second)
        )
    assert refused_events(engine) == []

    written = refusals.flush(now=MINUTE_START + dt.timedelta(minutes=1))

    assert written == 1
    assert refused_events(engine) == [
        {
            "client": "203.0.113.5",
            "count": 50,
            "minute": "2026-04-01T09:00Z",
            "reasons": {"ChallengeExpiredError": 25, "UnknownCredentialError": 25},
        }
    ]
    assert refusals.flush(now=MINUTE_START + dt.timedelta(minutes=2)) == 0


def test_each_address_and_minute_is_an_event_of_its_own(engine: Engine) -> None:
    refusals = SignInRefusals(engine)
    for client, offset in (("192.0.2.1", 0), ("192.0.2.2", 10), ("192.0.2.1", 70)):
        refusals.count(
            client=client,
            reason="UnknownCredentialError",
            now=MINUTE_START + dt.timedelta(seconds=offset),
        )

    # The third refusal, a minute later, wrote the first minute's two addresses.
    first_minute = refused_events(engine)
    refusals.flush(now=MINUTE_START + dt.timedelta(minutes=1), including_this_minute=True)

    assert sorted((event["client"], event["count"]) for event in first_minute) == [
        ("192.0.2.1", 1),
        ("192.0.2.2", 1),
    ]
    assert len(refused_events(engine)) == 3


@pytest.mark.parametrize("including_this_minute", [False, True])
def test_the_minute_not_over_is_written_only_when_asked(
    engine: Engine, including_this_minute: bool
) -> None:
    refusals = SignInRefusals(engine)
    refusals.count(client="192.0.2.9", reason="AssertionRefusedError", now=MINUTE_START)

    refusals.flush(
        now=MINUTE_START + dt.timedelta(seconds=30), including_this_minute=including_this_minute
    )

    assert len(refused_events(engine)) == (1 if including_this_minute else 0)
