"""The security officers' console in headless Chromium, each officer in a browser context of
their own with a virtual security key: the bootstrap link, sign-in and sign-out, invitations,
an enrollment made at the console and walked by a phone, revocation seen by openssl's OCSP
client, the roles, a cloned key's counter, the HSM and audit pages, and phone screens.

A Shomei instance of this module's own (`shomei init`, `shomei serve`, `shomei officer
bootstrap` in child processes): the officers registered here change what the console shows.
The officers are made once (module scope); each test states one thing about them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.sync_api import Browser, Page, Playwright
from sqlalchemy import func, select

from pwa_server.store.tables import audit_events, officer_credentials, officer_invitations
from tests.e2e.browser.conftest import ENGLISH, device, watch
from tests.e2e.browser.officer import (
    PHONE_WIDTH,
    ConsoleServer,
    Invited,
    OfficerBrowser,
    Registered,
    android_identity,
    phone_widths,
    widths,
)
from tests.e2e.journey.flow import Invitation

KANA = re.compile(r"[\u3040-\u30ff]")
ENROLLED_USER = "console-user-1"
ENROLLED_EMAIL = "console-user-1@example.jp"


# --- the bootstrap link, before anyone registered ---------------------------------------


@dataclass(frozen=True)
class Seen:
    """A page as the browser showed it."""

    status: int
    lang: str
    h1: str
    role: str


@dataclass
class FirstLook:
    """The bootstrap link opened before anyone registered, in Japanese and in English."""

    link: str
    japanese: Seen
    english: Seen


def _look(officer_page: Page, link: str) -> Seen:
    response = officer_page.goto(link)
    assert response is not None
    return Seen(
        response.status,
        officer_page.locator("html").get_attribute("lang") or "",
        officer_page.locator("h1").inner_text().strip(),
        officer_page.locator("#invited-role").inner_text().strip(),
    )


@pytest.fixture(scope="module")
def first_look(console: ConsoleServer, console_browser: Browser) -> FirstLook:
    """`shomei officer bootstrap`, and its link opened (not used) by two browsers."""
    link = console.bootstrap_link()
    looks = {}
    for locale in ("ja-JP", "en-US"):
        context = console_browser.new_context(locale=locale, ignore_https_errors=False)
        try:
            looks[locale] = _look(context.new_page(), link)
        finally:
            context.close()
    return FirstLook(link, looks["ja-JP"], looks["en-US"])


@pytest.fixture(scope="module")
def bootstrap_link(first_look: FirstLook) -> str:
    """The link the security officer registers with, once both browsers looked at it."""
    return first_look.link


# --- an enrollment made at the console, walked by a phone, revoked at the console ---------


@dataclass
class Created:
    """What the registration officer saw after creating an enrollment."""

    enrollment_id: str
    enrollment_url: str
    one_time_password: str
    qr_svgs: int
    qr_width: float
    widths: dict[str, tuple[int, int]]
    problems: list[str]


@pytest.fixture(scope="module")
def created(registration_officer: Invited) -> Created:
    officer = registration_officer.officer
    officer.signed_in()
    before = len(officer.watched.problems)
    page = officer.page
    measured = {}
    officer.goto("/officer/enrollments/new")
    measured["new"] = widths(page)
    page.locator("#user_id").fill(ENROLLED_USER)
    page.locator("#email").fill(ENROLLED_EMAIL)
    page.locator("#display_name").fill("Console User")
    officer.submit_with_step_up("form[action='/officer/enrollments']", "/officer/enrollments")
    measured["created"] = widths(page)
    opened = page.locator("main a[href^='/officer/enrollments/']").get_attribute("href")
    assert opened, page.content()
    return Created(
        enrollment_id=opened.rsplit("/", 1)[1],
        enrollment_url=page.locator("#enrollment-url").inner_text().strip(),
        one_time_password=page.locator("#one-time-password").inner_text().strip(),
        qr_svgs=page.locator("#enrollment-qr svg").count(),
        qr_width=(page.locator("#enrollment-qr svg").bounding_box() or {"width": 0.0})["width"],
        widths=measured,
        problems=officer.watched.problems[before:],
    )


@dataclass
class Downloaded:
    """The Android phone's PKCS#12, opened by openssl."""

    certificate: Path
    serial: str


@pytest.fixture(scope="module")
def downloaded(
    console: ConsoleServer, created: Created, tmp_path_factory: pytest.TempPathFactory
) -> Downloaded:
    """flow.py's phone (httpx) with the console's URL and one-time password: the .p12."""
    invitation = Invitation(
        enrollment_id=created.enrollment_id,
        enrollment_url=created.enrollment_url,
        one_time_password=created.one_time_password,
        expires_at="",
        email=ENROLLED_EMAIL,
    )
    identity = android_identity(console, invitation, tmp_path_factory.mktemp("phone"))
    certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
    return Downloaded(identity.certificate, format(certificate.serial_number, "x"))


@pytest.fixture(scope="module")
def ca_files(console: ConsoleServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return console.ca_files(tmp_path_factory.mktemp("ca"))


@dataclass
class Revoked:
    """The certificate on the enrollment's console page and in OCSP, before and after."""

    listed_before: str
    ocsp_before: str
    listed_after: str
    ocsp_after: str
    revoke_buttons_after: int
    problems: list[str]


@pytest.fixture(scope="module")
def revoked(
    console: ConsoleServer,
    registration_officer: Invited,
    created: Created,
    downloaded: Downloaded,
    ca_files: dict[str, Path],
) -> Revoked:
    officer = registration_officer.officer
    officer.signed_in()
    before = len(officer.watched.problems)
    page = officer.page
    detail = f"/officer/enrollments/{created.enrollment_id}"
    officer.goto(detail)
    section = page.locator(f"#certificate-{downloaded.serial}")
    listed_before = section.locator(".certificate-status").inner_text().strip()
    ocsp_before = console.ocsp(ca_files, downloaded.certificate)
    section.locator("select[name=reason]").select_option("keyCompromise")
    officer.submit_with_step_up(f"#certificate-{downloaded.serial} form", detail)
    return Revoked(
        listed_before=listed_before,
        ocsp_before=ocsp_before,
        listed_after=section.locator(".certificate-status").inner_text().strip(),
        ocsp_after=console.ocsp(ca_files, downloaded.certificate),
        revoke_buttons_after=section.locator("form").count(),
        problems=officer.watched.problems[before:],
    )


# --- 1. the bootstrap link ----------------------------------------------------------------


def test_bootstrap_link_registers_the_first_security_officer(
    console: ConsoleServer, first_look: FirstLook, security_officer: Registered
) -> None:
    assert first_look.link.startswith(f"{console.base_url}/officer/register/")
    assert first_look.english == Seen(200, "en", "Register your security key", "Security officer")
    assert security_officer.landed == f"{console.base_url}/officer/"
    assert "(Security officer)" in security_officer.signed_in_as
    assert security_officer.problems == []


def test_register_page_speaks_japanese_to_a_japanese_browser(first_look: FirstLook) -> None:
    seen = first_look.japanese
    assert (seen.status, seen.lang) == (200, "ja")
    assert KANA.search(seen.h1), seen
    assert KANA.search(seen.role), seen


def test_bootstrap_link_works_only_once(
    console: ConsoleServer, console_browser: Browser, security_officer: Registered
) -> None:
    context = console_browser.new_context(**ENGLISH, ignore_https_errors=False)
    try:
        page = context.new_page()
        response = page.goto(security_officer.link)
        assert response is not None
        assert response.status == 410
        assert page.locator("h1").inner_text() == "This invitation link cannot be used"
        assert page.locator("#register").count() == 0
    finally:
        context.close()


# --- 2. sign out, sign in ---------------------------------------------------------------


def test_security_officer_signs_out_and_in_again_with_the_same_key(
    console: ConsoleServer, security_officer: Registered
) -> None:
    officer = security_officer.officer
    officer.signed_in()
    before = len(officer.watched.problems)

    officer.sign_out()
    assert officer.goto("/officer/hsm").url == f"{console.base_url}/officer/sign-in"
    officer.page.get_by_role("button", name="Sign in with my key").click()
    officer.page.wait_for_url(f"{console.base_url}/officer/")

    assert "(Security officer)" in officer.page.locator("p.signed-in").inner_text()
    assert len(officer.credentials()) == 1
    assert officer.watched.problems[before:] == []


# --- 3. an invitation -------------------------------------------------------------------


def test_invited_registration_officer_registers_with_a_second_key(
    console: ConsoleServer, security_officer: Registered, registration_officer: Invited
) -> None:
    registered = registration_officer.registered
    assert registered.link.startswith(f"{console.base_url}/officer/register/")
    assert registered.link in registration_officer.invited_page_text
    assert registration_officer.invited_page_problems == []
    assert registered.landed == f"{console.base_url}/officer/"
    assert "Registration Officer One (Registration officer)" in registered.signed_in_as
    assert registered.problems == []
    # Two authenticators, one key each: the officers do not share a credential.
    ours = {c["credentialId"] for c in registration_officer.officer.credentials()}
    theirs = {c["credentialId"] for c in security_officer.officer.credentials()}
    assert len(ours) == len(theirs) == 1
    assert ours.isdisjoint(theirs)


def test_invitation_link_is_shown_only_once(
    security_officer: Registered, registration_officer: Invited
) -> None:
    officer = security_officer.officer
    officer.signed_in()
    officer.goto("/officer/officers")
    token = registration_officer.registered.link.rsplit("/", 1)[1]

    assert token not in officer.page.content()
    rows = officer.page.locator("#officers tbody tr").all_inner_texts()
    assert any("Registration Officer One" in row and "active" in row for row in rows), rows


def test_invitation_without_a_fresh_key_assertion_is_refused(
    console: ConsoleServer, security_officer: Registered
) -> None:
    officer = security_officer.officer
    officer.signed_in()
    officer.goto("/officer/officers")
    invitations_before = console.query(select(func.count()).select_from(officer_invitations))

    # The form as a script without the key would send it: CSRF token right, assertion empty.
    status = officer.post_form(
        "/officer/officers/invite",
        {
            "csrf_token": officer.csrf_token(),
            "display_name": "Unconfirmed Officer",
            "role": "security_officer",
            "assertion": "",
        },
    )

    assert status == 403
    assert console.query(select(func.count()).select_from(officer_invitations)) == (
        invitations_before
    )


# --- 4. an enrollment at the console ----------------------------------------------------


def test_new_enrollment_shows_url_one_time_password_and_qr_code(
    console: ConsoleServer, created: Created
) -> None:
    assert created.enrollment_url.startswith(f"{console.base_url}/")
    assert re.fullmatch(r"\S{6,}", created.one_time_password), created.one_time_password
    assert created.qr_svgs == 1
    # Large enough for a phone's camera, small enough for the officer's phone screen.
    assert 100 <= created.qr_width <= PHONE_WIDTH, created.qr_width
    assert created.problems == []


def test_one_time_password_from_the_console_enrolls_a_phone(
    registration_officer: Invited, created: Created, downloaded: Downloaded
) -> None:
    officer = registration_officer.officer
    officer.signed_in()
    officer.goto(f"/officer/enrollments/{created.enrollment_id}")

    section = officer.page.locator(f"#certificate-{downloaded.serial}")
    assert section.count() == 1, officer.page.locator("main").inner_text()
    assert section.locator(".certificate-status").inner_text().strip() == "valid"
    assert officer.page.locator("#enrollment-status").inner_text().strip() == "downloaded"


def test_revocation_at_the_console_shows_on_the_page(revoked: Revoked) -> None:
    assert revoked.listed_before == "valid"
    assert revoked.listed_after == "revoked (keyCompromise)"
    assert revoked.revoke_buttons_after == 0
    assert revoked.problems == []


def test_revocation_at_the_console_reaches_ocsp(revoked: Revoked) -> None:
    assert ": good" in revoked.ocsp_before, revoked.ocsp_before
    assert ": revoked" in revoked.ocsp_after, revoked.ocsp_after
    assert "Reason: keyCompromise" in revoked.ocsp_after, revoked.ocsp_after


def test_the_certificates_page_finds_the_phones_certificate_by_its_serial(
    registration_officer: Invited, revoked: Revoked, downloaded: Downloaded
) -> None:
    officer = registration_officer.officer
    response = officer.goto(f"/officer/certificates?q={downloaded.serial}")
    assert response.status == 200
    rows = officer.page.locator("#certificates tbody tr")
    assert rows.count() == 1
    assert downloaded.serial in rows.first.inner_text()
    assert "revoked (keyCompromise)" in rows.first.inner_text()


# --- 5. roles ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/officer/hsm", "/officer/audit"])
def test_registration_officer_may_not_see_ca_or_audit(
    registration_officer: Invited, path: str
) -> None:
    officer = registration_officer.officer
    officer.signed_in()

    assert officer.goto(path).status == 403


@pytest.mark.parametrize("path", ["/officer/enrollments", "/officer/enrollments/new"])
def test_security_officer_may_not_manage_enrollments(
    security_officer: Registered, path: str
) -> None:
    officer = security_officer.officer
    officer.signed_in()

    assert officer.goto(path).status == 403


def test_auditor_reads_the_audit_log_and_its_intact_chain(auditor: Invited) -> None:
    officer = auditor.officer
    assert "Auditor One (Auditor)" in auditor.registered.signed_in_as
    officer.signed_in()

    response = officer.goto("/officer/audit")

    assert response.status == 200
    state = officer.page.locator("#audit-state")
    assert "intact" in state.inner_text()
    assert state.get_attribute("class") == "ok"


@pytest.mark.parametrize("path", ["/officer/enrollments", "/officer/hsm"])
def test_auditor_may_not_see_enrollments_or_hsm(auditor: Invited, path: str) -> None:
    officer = auditor.officer
    officer.signed_in()

    assert officer.goto(path).status == 403


def test_auditor_may_not_invite_even_with_a_valid_csrf_token(auditor: Invited) -> None:
    officer = auditor.officer
    officer.signed_in()
    officer.goto("/officer/officers")
    assert officer.page.locator("form[action='/officer/officers/invite']").count() == 0

    status = officer.post_form(
        "/officer/officers/invite",
        {
            "csrf_token": officer.csrf_token(),
            "display_name": "Smuggled Officer",
            "role": "security_officer",
            "assertion": "",
        },
    )

    assert status == 403


def test_console_navigation_offers_only_what_the_role_allows(
    security_officer: Registered, registration_officer: Invited, auditor: Invited
) -> None:
    def links(officer: OfficerBrowser) -> list[str]:
        officer.signed_in()
        return [
            str(link.get_attribute("href"))
            for link in officer.page.locator("nav.console-nav a").all()
        ]

    common = ["/officer/", "/officer/officers"]
    assert sorted(links(security_officer.officer)) == sorted(
        [*common, "/officer/hsm", "/officer/ceremonies", "/officer/audit"]
    )
    assert sorted(links(registration_officer.officer)) == sorted(
        [*common, "/officer/enrollments", "/officer/certificates", "/officer/sites"]
    )
    assert sorted(links(auditor.officer)) == sorted([*common, "/officer/audit"])


# --- 6. a key whose counter went backwards ------------------------------------------------


def _credential_id(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def test_sign_in_with_a_counter_that_went_backwards_is_refused_and_audited(
    console: ConsoleServer, security_officer: Registered
) -> None:
    officer = security_officer.officer
    officer.signed_in()
    (credential,) = officer.credentials()
    (stored,) = console.query(
        select(officer_credentials.c.sign_count).where(
            officer_credentials.c.credential_id == _credential_id(credential["credentialId"])
        ),
    )
    stored_count = int(stored["sign_count"])
    # A clone that was copied early: its next assertion carries a count of 1.
    assert stored_count >= 2, stored_count
    failures_before = _sign_in_failures(console)

    officer.sign_out()
    officer.replace_credential(credential, 0)
    try:
        officer.page.locator("#sign-in").click()
        officer.page.locator("#webauthn-status").wait_for(state="visible")
        refused_at = officer.page.url
        message = officer.status_text()
    finally:
        # The genuine key again, its counter above the server's.
        officer.replace_credential(credential, max(stored_count, credential["signCount"]))

    assert refused_at == f"{console.base_url}/officer/sign-in"
    assert message.startswith("The key was not accepted."), message
    assert "sign counter 1 is not above the stored" in message, message
    new_failures = _sign_in_failures(console)[len(failures_before) :]
    assert len(new_failures) == 1, new_failures
    details = json.loads(new_failures[0]["details"])
    assert details["reason"] == "SignCountError"
    assert "counter" in details["warning"]
    assert new_failures[0]["outcome"] == "failure"
    # The stored counter did not move: the genuine key still signs in.
    officer.sign_in()


def _sign_in_failures(console: ConsoleServer) -> list[dict[str, Any]]:
    return console.query(
        select(audit_events)
        .where(audit_events.c.action == "officer.sign_in_failed")
        .order_by(audit_events.c.id),
    )


# --- 7. the HSM and audit pages -----------------------------------------------------------


def test_hsm_page_lists_ca_keys_sensitive_and_not_extractable(
    security_officer: Registered,
) -> None:
    officer = security_officer.officer
    officer.signed_in()
    officer.goto("/officer/hsm")

    rows = [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in officer.page.locator("#key-objects tbody tr").all()
    ]
    private = [row for row in rows if row[0] == "private"]
    assert len(private) >= 2, rows
    assert all(row[4:6] == ["True", "False"] for row in private), rows


def test_hsm_page_shows_the_ca_certificates_fingerprints(
    security_officer: Registered, ca_files: dict[str, Path]
) -> None:
    officer = security_officer.officer
    officer.signed_in()
    officer.goto("/officer/hsm")

    shown = officer.page.locator("section.authority code").all_inner_texts()
    for role in ("root", "issuing"):
        certificate = x509.load_pem_x509_certificate(ca_files[role].read_bytes())
        der = certificate.public_bytes(Encoding.DER)
        assert hashlib.sha256(der).hexdigest() in shown, (role, shown)


def test_audit_page_lists_sign_ins_and_says_the_chain_is_intact(
    security_officer: Registered,
) -> None:
    officer = security_officer.officer
    officer.signed_in()
    officer.goto("/officer/audit?action=officer.signed_in")

    actions = officer.page.locator("#audit-events tbody tr td:nth-child(3)").all_inner_texts()
    assert actions, officer.page.locator("main").inner_text()
    assert set(actions) == {"officer.signed_in"}
    assert "The chain is intact" in officer.page.locator("#audit-state").inner_text()


# --- 8. phones, consoles and CSP ----------------------------------------------------------

PAGES = {
    "security_officer": ["/officer/", "/officer/officers", "/officer/hsm", "/officer/audit"],
    "registration_officer": [
        "/officer/",
        "/officer/officers",
        "/officer/enrollments",
        "/officer/enrollments/new",
        "{enrollment}",
    ],
    "auditor": ["/officer/", "/officer/officers", "/officer/audit"],
}


@pytest.mark.parametrize("role", list(PAGES))
def test_console_pages_fit_an_iphone_without_console_errors(
    request: pytest.FixtureRequest,
    console: ConsoleServer,
    console_browser: Browser,
    playwright: Playwright,
    created: Created,
    role: str,
) -> None:
    officer: OfficerBrowser = request.getfixturevalue(role).officer
    measured = {}
    with officer.on_iphone(console_browser, playwright) as watched:
        for path in PAGES[role]:
            path = path.format(enrollment=f"/officer/enrollments/{created.enrollment_id}")
            measured[path] = phone_widths(watched, f"{console.base_url}{path}")

    assert all(pair == (PHONE_WIDTH, PHONE_WIDTH) for pair in measured.values()), measured
    assert watched.problems == []


def test_sign_in_page_fits_an_iphone_without_console_errors(
    console: ConsoleServer, console_browser: Browser, playwright: Playwright
) -> None:
    context = console_browser.new_context(
        **device(playwright, "iphone"), **ENGLISH, ignore_https_errors=False
    )
    try:
        watched = watch(context)
        watched.page.goto(f"{console.base_url}/officer/sign-in")
        watched.page.wait_for_load_state("networkidle")
        measured = widths(watched.page)
    finally:
        context.close()

    assert measured == (PHONE_WIDTH, PHONE_WIDTH)
    assert watched.problems == []


def test_enrollment_pages_of_the_registration_officers_phone_fit_its_screen(
    created: Created,
) -> None:
    assert all(pair == (PHONE_WIDTH, PHONE_WIDTH) for pair in created.widths.values()), (
        created.widths
    )
