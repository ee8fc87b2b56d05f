"""Console sessions over a real `shomei serve`: a cookie copied before sign-out opens nothing
after it, idle and old sessions end, and "sign out everywhere else" ends the other sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from pwa_server.officers.policy import IDLE_TIMEOUT, SESSION_LIFETIME
from pwa_server.officers.sessions import session_id
from pwa_server.store.tables import officer_sessions
from tests.e2e.browser.officer import ConsoleServer
from tests.e2e.console_client import ConsoleClient


@pytest.fixture
def signed_in(console: ConsoleServer, officer: ConsoleClient) -> Iterator[ConsoleClient]:
    """A new browser of the officer's, signed in with the same key."""
    client = ConsoleClient.open(console, officer.key)
    assert client.sign_in().status_code == 200
    yield client
    client.close()


def overview_status(client: ConsoleClient) -> int:
    """200 when the console opens, 303 (to the sign-in page) when the session is gone."""
    return client.page("/officer/").status_code


def move_session(console: ConsoleServer, client: ConsoleClient, **moved: dt.timedelta) -> None:
    """Make the client's session as old (created_at) or unused (last_seen_at) as `moved`."""
    now = dt.datetime.now(dt.UTC)
    console.change(
        update(officer_sessions)
        .where(officer_sessions.c.id == session_id(client.session_token()))
        .values({column: now - ago for column, ago in moved.items()})
    )


def test_a_cookie_copied_before_sign_out_is_refused_after_it(
    signed_in: ConsoleClient,
) -> None:
    copied = signed_in.copy()
    assert overview_status(copied) == 200

    signed_out = signed_in.post_form("/officer/sign-out", {})

    assert signed_out.status_code == 303
    assert overview_status(copied) == 303
    assert copied.page("/officer/").headers["location"] == "/officer/sign-in"
    assert overview_status(signed_in) == 303
    copied.close()


def test_a_session_idle_for_the_timeout_is_refused(
    console: ConsoleServer, signed_in: ConsoleClient
) -> None:
    move_session(console, signed_in, last_seen_at=IDLE_TIMEOUT)

    assert overview_status(signed_in) == 303


def test_a_session_past_its_lifetime_is_refused_though_in_use(
    console: ConsoleServer, signed_in: ConsoleClient
) -> None:
    move_session(console, signed_in, created_at=SESSION_LIFETIME, last_seen_at=dt.timedelta(0))

    assert overview_status(signed_in) == 303


def test_sign_out_everywhere_else_ends_the_other_sessions(
    console: ConsoleServer, officer: ConsoleClient, signed_in: ConsoleClient
) -> None:
    other = ConsoleClient.open(console, officer.key)
    assert other.sign_in().status_code == 200
    listed = signed_in.page("/officer/officers").text
    assert listed.count("<tr") >= 3 + 1  # three sessions of the officer's, and headers

    ended = signed_in.confirmed_form("/officer/sessions/end-others")

    assert ended.status_code == 303, ended.text
    assert overview_status(other) == 303
    assert overview_status(officer) == 303
    assert overview_status(signed_in) == 200
    assert "signed out everywhere else" in signed_in.page("/officer/").text
    other.close()


def test_sign_out_everywhere_else_needs_a_fresh_key_assertion(
    console: ConsoleServer, officer: ConsoleClient, signed_in: ConsoleClient
) -> None:
    other = ConsoleClient.open(console, officer.key)
    assert other.sign_in().status_code == 200
    signed_in.page("/officer/officers")

    refused = signed_in.post_form("/officer/sessions/end-others", {"assertion": ""})

    assert refused.status_code >= 400
    assert overview_status(other) == 200
    other.close()
