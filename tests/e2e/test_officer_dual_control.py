"""Dual control over who becomes a security officer, over a real `shomei serve`: one security
officer cannot make a second "security officer" of their own while another exists."""

from __future__ import annotations

import re

from tests.e2e.browser.officer import ConsoleServer
from tests.e2e.console_client import ConsoleClient
from tests.officers.authenticator import SoftwareAuthenticator

_LINK = re.compile(r'<code id="invitation-link">([^<]+)</code>')
_APPROVE = re.compile(r'action="(/officer/invitations/\d+/approve)"')


def invite_security_officer(officer: ConsoleClient, name: str) -> str:
    officer.page("/officer/officers")
    shown = officer.confirmed_form(
        "/officer/officers/invite", {"role": "security_officer", "display_name": name}
    )
    assert shown.status_code == 200, shown.text
    found = _LINK.search(shown.text)
    assert found, shown.text
    return found.group(1)


def test_a_security_officer_cannot_register_a_second_self_without_another_ones_approval(
    console: ConsoleServer, officer: ConsoleClient
) -> None:
    # The second security officer joins at once (bootstrap: the first was alone).
    colleague = ConsoleClient.open(console)
    colleague.register(invite_security_officer(officer, "Kenji Security"))
    link = invite_security_officer(officer, "Aiko Again")
    sockpuppet = ConsoleClient.open(console, SoftwareAuthenticator(console.base_url))
    path = link.removeprefix(console.base_url)

    page = sockpuppet.page(path)
    refused = sockpuppet.post_json(f"{path}/options")
    approve = _APPROVE.search(colleague.page("/officer/officers").text)
    assert approve, "the colleague sees no invitation to approve"
    own_approval = officer.confirmed_form(approve.group(1))

    assert 'id="invitation-awaiting"' in page.text
    assert 'id="register"' not in page.text
    assert refused.status_code == 410
    assert own_approval.status_code == 409
    assert colleague.confirmed_form(approve.group(1)).status_code == 303
    sockpuppet.register(link)
    assert "Aiko Again" in officer.page("/officer/officers").text
    sockpuppet.close()
    colleague.close()
