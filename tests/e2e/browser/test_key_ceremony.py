"""A key ceremony under dual control in headless Chromium (issue 4): two security officers,
each in a browser context of their own with a virtual security key of their own. One of them
proposes a new issuing CA; alone they cannot carry it out; once the second approved, it is
carried out, the workers restart on the new CA, and what it issues passes `openssl verify`.

A Shomei instance of this module's own (`shomei init`, `shomei serve`, `shomei officer
bootstrap` in child processes): the ceremony replaces the instance's issuing CA. The steps
are made once, in order (module scope); each test states one thing about them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from playwright.sync_api import Browser
from sqlalchemy import select

from pwa_server.store.tables import audit_events, certificate_authorities
from tests.conftest import ca_public_key, openssl
from tests.e2e.browser.conftest import ENGLISH
from tests.e2e.browser.officer import ConsoleServer, Invited, OfficerBrowser, android_identity
from tests.e2e.journey.flow import Identity, Invitation, check

CEREMONIES = "/officer/ceremonies"
PROPOSE_FORM = "form:has(#propose-new-issuing-ca)"
# Each worker looks for a new issuing CA every 5 s, then stops gracefully; the supervisor
# starts a new one after 1 s, which opens the token and database again.
RESTART_SECONDS = 20.0
# What a worker logs when a ceremony's CA makes it restart; it closes its listeners within
# uvicorn's 0.1 s tick of its main loop after that.
RESTARTING = "is active: restarting this worker"
LISTENERS_CLOSE_SECONDS = 0.5
ENROLLED_USER = "after-ceremony-user"


# --- the instance and the browser -------------------------------------------------------


def authorities(console: ConsoleServer) -> list[dict[str, Any]]:
    """The certificate_authorities rows, oldest first."""
    return console.query(select(certificate_authorities).order_by(certificate_authorities.c.id))


def issuing_pem(console: ConsoleServer) -> bytes:
    """/pki/issuing.pem over plain HTTP, on a connection of its own (any worker may answer)."""
    with httpx.Client(timeout=30) as client:
        response = client.get(f"{console.pki_url}/issuing.pem")
    assert response.status_code == 200, response.text
    return response.content


def shown(officer: OfficerBrowser, selector: str) -> str:
    return officer.page.locator(selector).inner_text().strip()


# --- the officers -----------------------------------------------------------------------


@dataclass(frozen=True)
class DualControl:
    """The #dual-control paragraph of the ceremonies page."""

    text: str
    css_class: str | None


def dual_control(officer: OfficerBrowser) -> DualControl:
    officer.signed_in()
    assert officer.goto(CEREMONIES).status == 200
    paragraph = officer.page.locator("#dual-control")
    return DualControl(paragraph.inner_text().strip(), paragraph.get_attribute("class"))


@pytest.fixture(scope="module")
def officer_a(
    console: ConsoleServer, console_browser: Browser, bootstrap_link: str
) -> Iterator[OfficerBrowser]:
    """The first security officer, registered through `shomei officer bootstrap`'s link."""
    with console.register_officer(
        console_browser, bootstrap_link, "officer A's key", **ENGLISH
    ) as registered:
        yield registered.officer


@pytest.fixture(scope="module")
def alone(officer_a: OfficerBrowser) -> DualControl:
    """The ceremonies page while officer A is the only security officer."""
    return dual_control(officer_a)


@pytest.fixture(scope="module")
def officer_b(
    console_browser: Browser, officer_a: OfficerBrowser, alone: DualControl
) -> Iterator[Invited]:
    """A second security officer, invited by A, registered with a second authenticator."""
    with officer_a.invite_and_register(
        console_browser, "Security Officer Two", "security_officer", "officer B's key", **ENGLISH
    ) as invited:
        yield invited


@pytest.fixture(scope="module")
def paired(officer_a: OfficerBrowser, officer_b: Invited) -> DualControl:
    """The ceremonies page once two security officers exist."""
    return dual_control(officer_b.officer)


# --- the ceremony, step by step ---------------------------------------------------------


@dataclass(frozen=True)
class Before:
    """The CA as it was before the ceremony."""

    root: Path
    issuing: Path
    authorities: list[dict[str, Any]]
    log_lines: int


@pytest.fixture(scope="module")
def before(
    console: ConsoleServer,
    paired: DualControl,
    downloaded_before: Downloaded,
    tmp_path_factory: pytest.TempPathFactory,
) -> Before:
    files = console.ca_files(tmp_path_factory.mktemp("old-ca"))
    return Before(
        files["root"],
        files["issuing"],
        authorities(console),
        len(console.log.read_text(errors="replace").splitlines()),
    )


@dataclass(frozen=True)
class CeremonySeen:
    """A ceremony's section on the ceremonies page."""

    status: str
    approvals: str
    result: str
    buttons: tuple[str, ...]  # the classes of its buttons


def ceremony_seen(officer: OfficerBrowser, ceremony_id: int) -> CeremonySeen:
    section = officer.page.locator(f"#ceremony-{ceremony_id}")
    result = section.locator(".ceremony-result")
    return CeremonySeen(
        section.locator(".ceremony-status").inner_text().strip(),
        section.locator(".ceremony-approvals").inner_text().strip(),
        result.inner_text().strip() if result.count() else "",
        tuple(str(button.get_attribute("class")) for button in section.locator("button").all()),
    )


@dataclass(frozen=True)
class Proposed:
    ceremony_id: int
    seen: CeremonySeen
    problems: list[str]


@pytest.fixture(scope="module")
def proposed(officer_a: OfficerBrowser, before: Before) -> Proposed:
    """Officer A proposes a new issuing CA, confirmed with A's key."""
    officer_a.signed_in()
    officer_a.goto(CEREMONIES)
    problems_before = len(officer_a.watched.problems)
    officer_a.submit_with_step_up(PROPOSE_FORM, CEREMONIES)
    sections = officer_a.page.locator("section.ceremony")
    assert sections.count() == 1, officer_a.page.locator("main").inner_text()
    ceremony_id = int(str(sections.first.get_attribute("id")).removeprefix("ceremony-"))
    return Proposed(
        ceremony_id,
        ceremony_seen(officer_a, ceremony_id),
        officer_a.watched.problems[problems_before:],
    )


@dataclass(frozen=True)
class Refused:
    """Officer A carrying out their own proposal alone."""

    status: int
    title: str
    issuing: bytes
    authorities: list[dict[str, Any]]
    seen_after: CeremonySeen


@pytest.fixture(scope="module")
def carried_out_alone(
    console: ConsoleServer, officer_a: OfficerBrowser, proposed: Proposed
) -> Refused:
    officer_a.signed_in()
    officer_a.goto(CEREMONIES)
    ceremony = proposed.ceremony_id
    response = officer_a.submit_with_step_up(
        f"#ceremony-{ceremony} form[action$='/execute']", f"{CEREMONIES}/{ceremony}/execute"
    )
    status, title = response.status, shown(officer_a, "h1")
    officer_a.goto(CEREMONIES)
    return Refused(
        status,
        title,
        issuing_pem(console),
        authorities(console),
        ceremony_seen(officer_a, ceremony),
    )


@pytest.fixture(scope="module")
def approved(
    officer_b: Invited, proposed: Proposed, carried_out_alone: Refused
) -> tuple[CeremonySeen, CeremonySeen]:
    """Officer B approves A's proposal with B's key: the section before and after."""
    officer = officer_b.officer
    officer.signed_in()
    officer.goto(CEREMONIES)
    seen_before = ceremony_seen(officer, proposed.ceremony_id)
    officer.submit_with_step_up(
        f"#ceremony-{proposed.ceremony_id} form[action$='/approve']", CEREMONIES
    )
    return seen_before, ceremony_seen(officer, proposed.ceremony_id)


@dataclass(frozen=True)
class Executed:
    """Officer B carried the ceremony out."""

    seen: CeremonySeen
    authorities: list[dict[str, Any]]
    problems: list[str]

    @property
    def new_issuing(self) -> dict[str, Any]:
        (row,) = [
            row
            for row in self.authorities
            if row["role"] == "issuing" and row["status"] == "active"
        ]
        return row


@pytest.fixture(scope="module")
def executed(
    console: ConsoleServer,
    officer_b: Invited,
    proposed: Proposed,
    approved: tuple[CeremonySeen, CeremonySeen],
) -> Executed:
    officer = officer_b.officer
    officer.signed_in()
    officer.goto(CEREMONIES)
    problems_before = len(officer.watched.problems)
    officer.submit_with_step_up(
        f"#ceremony-{proposed.ceremony_id} form[action$='/execute']", CEREMONIES
    )
    return Executed(
        ceremony_seen(officer, proposed.ceremony_id),
        authorities(console),
        officer.watched.problems[problems_before:],
    )


@pytest.fixture(scope="module")
def new_issuing(
    console: ConsoleServer,
    before: Before,
    executed: Executed,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """/pki/issuing.pem once every worker that loaded the old CA stopped accepting
    connections (as a file for openssl).

    Each worker logs that it restarts, then closes its listeners at once; its process may
    linger while the browser's idle TLS connections close. From then on, a new connection
    waits for a worker that loaded the new CA."""
    deadline = time.monotonic() + RESTART_SECONDS
    workers = console.settings.workers
    old = before.issuing.read_bytes()
    while True:
        lines = console.log.read_text(errors="replace").splitlines()[before.log_lines :]
        restarting = sum(RESTARTING in line for line in lines)
        if restarting >= workers:
            time.sleep(LISTENERS_CLOSE_SECONDS)
            published = issuing_pem(console)
            if published != old:
                break
        assert time.monotonic() < deadline, (
            f"{restarting} of {workers} workers restarting after {RESTART_SECONDS} s;"
            f" server log:\n{console.log_tail()}"
        )
        time.sleep(0.25)
    path = tmp_path_factory.mktemp("new-ca") / "new-issuing.pem"
    path.write_bytes(published)
    return path


@dataclass(frozen=True)
class ListedAuthority:
    """A CA's section on the HSM page."""

    heading: str
    subject: str


@pytest.fixture(scope="module")
def hsm_page(officer_b: Invited, new_issuing: Path) -> list[ListedAuthority]:
    """The CAs the HSM page lists, read from the restarted workers."""
    officer = officer_b.officer
    officer.signed_in()
    assert officer.goto("/officer/hsm").status == 200
    return [
        ListedAuthority(
            section.locator("h3").inner_text().strip(),
            section.locator("dd").first.inner_text().strip(),
        )
        for section in officer.page.locator("section.authority").all()
    ]


@pytest.fixture(scope="module")
def hsm_status(console: ConsoleServer, executed: Executed) -> dict[str, Any]:
    """`shomei hsm status --json`, in a process of its own."""
    result = console.shomei("hsm", "status", "--json", "--data-dir", str(console.settings.data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    status: dict[str, Any] = json.loads(result.stdout)
    return status


# --- an enrollment after the ceremony -----------------------------------------------------


@dataclass(frozen=True)
class Downloaded:
    """What a phone downloaded, opened by openssl."""

    identity: Identity
    issuer: x509.Name

    @property
    def certificate(self) -> Path:
        return self.identity.certificate


def _walk(console: ConsoleServer, user: str, directory: Path) -> Downloaded:
    """`shomei enroll create --json`, walked by flow.py's phone (httpx): the .p12, opened."""
    email = f"{user}@example.jp"
    made = console.shomei(
        "enroll",
        "create",
        "--json",
        "--data-dir",
        str(console.settings.data_dir),
        "--user-id",
        user,
        "--email",
        email,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    identity = android_identity(console, Invitation.from_cli(made.stdout, email), directory)
    certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
    return Downloaded(identity, certificate.issuer)


@pytest.fixture(scope="module")
def downloaded_before(
    console: ConsoleServer, tmp_path_factory: pytest.TempPathFactory
) -> Downloaded:
    """A phone's certificate from the first issuing CA, made before any ceremony."""
    return _walk(console, ENROLLED_USER + "-before", tmp_path_factory.mktemp("phone-before"))


@pytest.fixture(scope="module")
def downloaded(
    console: ConsoleServer, new_issuing: Path, tmp_path_factory: pytest.TempPathFactory
) -> Downloaded:
    """A phone's certificate made after the ceremony (by the new issuing CA)."""
    return _walk(console, ENROLLED_USER, tmp_path_factory.mktemp("phone"))


# --- 1, 2. dual control -------------------------------------------------------------------


def test_with_one_security_officer_dual_control_is_off(alone: DualControl) -> None:
    assert alone.text.startswith("Dual control is off"), alone
    assert "only one security officer" in alone.text
    assert alone.css_class == "warning"


def test_a_second_security_officer_turns_dual_control_on(
    officer_a: OfficerBrowser, officer_b: Invited, paired: DualControl
) -> None:
    assert "Security Officer Two (Security officer)" in officer_b.registered.signed_in_as
    # Two authenticators, one key each: the officers do not share a credential.
    ours = {credential["credentialId"] for credential in officer_b.officer.credentials()}
    theirs = {credential["credentialId"] for credential in officer_a.credentials()}
    assert len(ours) == len(theirs) == 1
    assert ours.isdisjoint(theirs)
    assert paired.text.startswith("Dual control is on"), paired
    assert "needs the approval of 2 security officers" in paired.text
    assert paired.css_class is None


# --- 3. one officer alone ---------------------------------------------------------------


def test_one_officer_alone_cannot_carry_out_their_own_proposal(
    console: ConsoleServer, before: Before, proposed: Proposed, carried_out_alone: Refused
) -> None:
    assert proposed.seen.status == "open"
    assert proposed.seen.approvals == "1 / 2"
    # The proposer's proposal is their approval: they are offered no second one.
    assert "approve" not in proposed.seen.buttons, proposed.seen
    assert proposed.problems == []

    assert carried_out_alone.status == 409, console.log_tail()
    assert carried_out_alone.title == "More approvals are needed"
    assert carried_out_alone.seen_after.status == "open"
    assert carried_out_alone.seen_after.approvals == "1 / 2"
    # The CA did not change.
    assert carried_out_alone.issuing == before.issuing.read_bytes()
    assert carried_out_alone.authorities == before.authorities


# --- 4. the second approval, and the ceremony carried out -----------------------------------


def test_second_officer_approves_and_carries_it_out(
    proposed: Proposed,
    approved: tuple[CeremonySeen, CeremonySeen],
    executed: Executed,
) -> None:
    seen_before, seen_after = approved
    assert "approve" in seen_before.buttons, seen_before
    assert seen_after.approvals == "2 / 2"
    assert seen_after.status == "open"

    assert executed.seen.status == "executed"
    assert executed.seen.buttons == ()
    assert executed.seen.result == executed.new_issuing["sha256_fingerprint"]
    assert executed.problems == []


def test_hsm_page_lists_the_new_issuing_ca_active_and_the_old_one_retired(
    before: Before, executed: Executed, hsm_page: list[ListedAuthority]
) -> None:
    (old,) = [row for row in before.authorities if row["role"] == "issuing"]
    new = executed.new_issuing
    listed = {authority.heading: authority.subject for authority in hsm_page}

    assert f"{old['name']} (issuing, retired)" in listed, listed
    assert "Issuing CA G2" in listed[f"{new['name']} (issuing, active)"], listed
    assert "Issuing CA G2" in new["subject"], new["subject"]


def test_new_ca_key_is_a_sensitive_non_extractable_token_object(
    executed: Executed, hsm_status: dict[str, Any]
) -> None:
    label = executed.new_issuing["key_label"]
    keys = [key for key in hsm_status["keys"] if key["label"] == label]

    assert {key["object_class"] for key in keys} == {"private", "public"}, hsm_status["keys"]
    (private,) = [key for key in keys if key["object_class"] == "private"]
    assert private["sensitive"] is True
    assert private["extractable"] is False
    assert private["key_id"] == executed.new_issuing["key_id"]


# --- 5, 6. what openssl says about the new CA and what it issues ----------------------------


def test_openssl_verifies_the_new_issuing_ca_against_the_root(
    before: Before, executed: Executed, new_issuing: Path
) -> None:
    certificate = x509.load_pem_x509_certificate(new_issuing.read_bytes())
    assert (
        certificate.fingerprint(hashes.SHA256()).hex()
        == (executed.new_issuing["sha256_fingerprint"])
    )

    result = openssl("verify", "-CAfile", before.root, new_issuing)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{new_issuing}: OK"


def test_enrollment_after_the_ceremony_is_issued_by_the_new_ca(
    before: Before, new_issuing: Path, downloaded: Downloaded
) -> None:
    result = openssl(
        "verify", "-CAfile", before.root, "-untrusted", new_issuing, downloaded.certificate
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{downloaded.certificate}: OK"
    assert downloaded.issuer == x509.load_pem_x509_certificate(new_issuing.read_bytes()).subject


def test_installation_check_accepts_a_certificate_of_the_new_ca(
    console: ConsoleServer, downloaded: Downloaded
) -> None:
    response = check(console, downloaded.identity)

    assert response.status_code == 200, console.log_tail()
    assert response.json()["status"] == "ok", response.text


def test_ocsp_answers_good_for_a_certificate_of_the_new_ca(
    console: ConsoleServer, before: Before, new_issuing: Path, downloaded: Downloaded
) -> None:
    answer = console.ocsp({"root": before.root, "issuing": new_issuing}, downloaded.certificate)

    assert f"{downloaded.certificate}: good" in answer, answer


# --- the retired CA's certificates stay usable until they expire ---------------------------


def test_installation_check_still_accepts_a_certificate_of_the_retired_ca(
    console: ConsoleServer, downloaded_before: Downloaded, new_issuing: Path
) -> None:
    response = check(console, downloaded_before.identity)

    assert response.status_code == 200, console.log_tail()
    assert response.json()["status"] == "ok", response.text


def test_ocsp_still_answers_good_for_a_certificate_of_the_retired_ca(
    console: ConsoleServer, before: Before, new_issuing: Path, downloaded_before: Downloaded
) -> None:
    answer = console.ocsp(
        {"root": before.root, "issuing": before.issuing}, downloaded_before.certificate
    )

    assert f"{downloaded_before.certificate}: good" in answer, answer


def test_the_crl_named_in_a_retired_cas_certificate_is_still_that_cas(
    before: Before, new_issuing: Path, downloaded_before: Downloaded
) -> None:
    certificate = x509.load_pem_x509_certificate(downloaded_before.certificate.read_bytes())
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    with httpx.Client(timeout=30) as client:
        crl = client.get(points[0].full_name[0].value)

    assert crl.status_code == 200
    old_ca = x509.load_pem_x509_certificate(before.issuing.read_bytes())
    assert x509.load_der_x509_crl(crl.content).is_signature_valid(ca_public_key(old_ca))


# --- 7. the audit log -----------------------------------------------------------------------


def test_audit_log_records_the_ceremony_and_its_chain_verifies(
    console: ConsoleServer, proposed: Proposed, executed: Executed
) -> None:
    ceremony = str(proposed.ceremony_id)
    events = console.query(select(audit_events).order_by(audit_events.c.id))
    of_ceremony = [
        (event["action"], event["outcome"])
        for event in events
        if (event["subject_kind"], event["subject"]) == ("key_ceremony", ceremony)
    ]
    generated = [
        (json.loads(event["details"]), event["outcome"])
        for event in events
        if event["action"] == "key.generated"
        and json.loads(event["details"]).get("ceremony") == proposed.ceremony_id
    ]

    assert of_ceremony == [
        ("approval.requested", "success"),
        ("approval.granted", "success"),
    ], of_ceremony
    assert len(generated) == 1, generated
    details, outcome = generated[0]
    assert outcome == "success"
    assert details["key_label"] == executed.new_issuing["key_label"]
    assert details["fingerprint"] == executed.new_issuing["sha256_fingerprint"]

    verified = console.shomei("audit", "verify", "--data-dir", str(console.settings.data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
