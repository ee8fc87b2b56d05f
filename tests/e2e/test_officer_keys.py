"""Officers' keys over a real `shomei serve`: a session alone (a copied cookie) adds no key;
the officer's own key confirms every key added."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from pwa_server.store.tables import audit_events, officer_credentials
from tests.e2e.browser.officer import ConsoleServer
from tests.e2e.console_client import ConsoleClient
from tests.officers.authenticator import SoftwareAuthenticator


def key_labels(console: ConsoleServer) -> list[str]:
    rows = console.query(select(officer_credentials.c.label).order_by(officer_credentials.c.label))
    return [row["label"] for row in rows]


def test_a_copied_session_cookie_alone_no_longer_registers_a_key(
    console: ConsoleServer, officer: ConsoleClient, tmp_path: Path
) -> None:
    officer.page("/officer/officers")
    attacker = officer.copy(SoftwareAuthenticator(console.base_url))
    before = key_labels(console)

    answered = attacker.add_key(SoftwareAuthenticator(console.base_url), confirm=False)

    assert answered.status_code == 400, answered.text
    assert key_labels(console) == before
    attacker.close()


def test_a_new_key_cannot_confirm_its_own_registration(
    console: ConsoleServer, officer: ConsoleClient
) -> None:
    officer.page("/officer/officers")
    intruder_key = SoftwareAuthenticator(console.base_url)
    attacker = officer.copy(intruder_key)
    before = key_labels(console)
    key_options = attacker.post_json("/officer/keys/options")
    credential = json.loads(intruder_key.create(key_options.text))
    # The step-up allows only the officer's registered keys; the new key answers anyway.
    step_up = attacker.post_json("/officer/step-up/options")
    forged = json.loads(intruder_key.get(step_up.text, credential=intruder_key.credentials[0]))

    answered = attacker.post_json(
        "/officer/keys", {"assertion": forged, "credential": credential, "label": "mine"}
    )

    assert answered.status_code == 400, answered.text
    assert key_labels(console) == before
    attacker.close()


def test_a_key_confirmed_by_the_officers_key_is_added_and_audited(
    console: ConsoleServer, officer: ConsoleClient
) -> None:
    officer.page("/officer/officers")

    answered = officer.add_key(SoftwareAuthenticator(console.base_url), label="drawer key")

    assert answered.status_code == 200, answered.text
    assert "drawer key" in key_labels(console)
    [event] = console.query(
        select(audit_events.c.actor, audit_events.c.details).where(
            audit_events.c.action == "officer.credential_added"
        )
    )
    assert json.loads(event["details"])["label"] == "drawer key"
    assert "drawer key" in officer.page("/officer/officers").text
