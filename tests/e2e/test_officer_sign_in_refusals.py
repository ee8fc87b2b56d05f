"""Refused sign-ins over a real `shomei serve`: a flood from one address is one audit event
a minute, with the count, however many workers answered it."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from pwa_server.store.tables import audit_events
from tests.e2e.browser.officer import ConsoleServer
from tests.e2e.console_client import ConsoleClient

FLOOD = 50


def test_fifty_refused_sign_ins_from_one_address_in_a_minute_are_one_audit_event(
    console: ConsoleServer, officer: ConsoleClient
) -> None:
    # All within one minute of the clock: wait for the next one when this one ends soon.
    if time.time() % 60 > 40:
        time.sleep(60 - time.time() % 60)
    stranger = ConsoleClient.open(console)
    stranger.page("/officer/sign-in")
    statuses = {
        stranger.post_json("/officer/sign-in", {"credential": {"id": "forged"}}).status_code
        for _ in range(FLOOD)
    }
    stranger.close()

    # The audit page writes the minute so far before it lists the log.
    listed = officer.page("/officer/audit?action=officer.sign_in_failed")

    assert statuses == {403}
    assert listed.status_code == 200
    rows = console.query(
        select(audit_events.c.details).where(audit_events.c.action == "officer.sign_in_failed")
    )
    assert [json.loads(row["details"])["count"] for row in rows] == [FLOOD]
    assert "The chain is intact" in listed.text
