"""Adding a key in Chromium: officer.js asks the registered key for a step-up assertion
first, then the new key registers (two virtual authenticators: the officer's first key and
the new one)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Route

from tests.e2e.browser.officer import AUTHENTICATOR, ConsoleServer, Registered


@pytest.fixture(scope="module")
def added(console: ConsoleServer, security_officer: Registered) -> Registered:
    """The security officer after registering a second key ("drawer key") at /officer/officers.

    The first key's authenticator holds a credential the new key's options exclude, so it is
    unplugged once the step-up is done and another takes its place (as a person puts the
    first key away and takes the new one); afterwards the first is plugged in again with its
    credential.
    """
    officer = security_officer.officer
    officer.signed_in()
    kept: list[dict[str, Any]] = []
    second: list[str] = []

    # Each authenticator alone in turn: one without a matching credential may answer an
    # assertion request first, with an error.
    def swap_keys(route: Route) -> None:
        kept.extend(officer.credentials())
        officer.cdp.send(
            "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": officer.authenticator_id}
        )
        new = officer.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        second.append(new["authenticatorId"])
        route.continue_()

    officer.page.route("**/officer/keys/options", swap_keys)
    officer.goto("/officer/officers")
    officer.page.locator("#key-label").fill("drawer key")
    officer.page.locator("#add-key").click()
    try:
        officer.page.locator("#my-keys li", has_text="drawer key").wait_for()
    finally:
        officer.page.unroute("**/officer/keys/options")
        for authenticator in second:
            officer.cdp.send(
                "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator}
            )
        plugged = officer.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        officer.authenticator_id = plugged["authenticatorId"]
        for credential in kept:
            officer.add_credential(credential)
    return security_officer


def test_adding_a_key_asks_the_registered_key_first_then_registers_the_new_one(
    console: ConsoleServer, added: Registered
) -> None:
    officer = added.officer
    keys = officer.page.locator("#my-keys li").all_inner_texts()

    assert [key.split(" · ")[0] for key in keys] == ["virtual key", "drawer key"]
    assert officer.status_text() == ""
    officer.goto("/officer/")
    assert "key added: drawer key" in officer.page.locator("#account-notices").inner_text()
    assert officer.watched.problems == []


def test_the_console_lists_the_officers_sessions(added: Registered) -> None:
    officer = added.officer
    officer.goto("/officer/officers")

    rows = officer.page.locator("#my-sessions tbody tr").all_inner_texts()

    assert any("this session" in row for row in rows), rows
