"""Officers of the console as people use it: a Shomei instance of its own (`shomei init` and
`shomei serve` in child processes), one browser context per officer, each with a virtual
WebAuthn authenticator of its own (Chrome DevTools protocol) that answers every ceremony;
what the console test modules share of officers, phones and pages."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Playwright, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from pwa_server.settings import Settings
from pwa_server.store.database import create_database_engine
from testbed.serving import ShomeiServer, free_port
from tests.conftest import openssl
from tests.e2e.browser.conftest import ENGLISH, Watched, device, watch
from tests.e2e.journey.flow import PIXEL, Identity, Invitation, Phone, open_pkcs12

# A security key that holds discoverable credentials and checks its PIN (always "verified"),
# and is touched whenever asked.
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "usb",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
LINK = re.compile(r"https://\S+/officer/register/\S+")
# What a ceremony (options, the authenticator, the answer, the next page) may take.
CEREMONY_MS = 15_000
# An iPhone 13's viewport: a console page that fits a phone is no wider.
PHONE_WIDTH = 390
UNCONTAINED_TABLES = (
    "[...document.querySelectorAll('table')].filter((t) => !t.closest('.table-scroll')).length"
)


class ConsoleServer(ShomeiServer):
    """`shomei serve` on a data directory of its own, and the `shomei` command line on it."""

    @classmethod
    def initialised(cls, directory: Path) -> ConsoleServer:
        """`shomei init` in a fresh data directory (a process of its own: this test process
        loaded SoftHSM with the session's configuration already)."""
        settings = Settings(
            data_dir=directory / "var",
            https_port=free_port(),
            check_port=free_port(),
            http_port=free_port(),
            workers=2,
        )
        server = cls(settings, directory / "serve.log")
        made = server.shomei("init")
        assert made.returncode == 0, made.stdout + made.stderr
        return server

    @property
    def pki_url(self) -> str:
        return f"{self.plain_url}/pki"

    def shomei(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """The `shomei` command line on this instance (no SHOMEI_* setting of ours leaks in)."""
        return subprocess.run(
            [sys.executable, "-m", "pwa_server.cli", *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def bootstrap_link(self) -> str:
        """`shomei officer bootstrap`: the one-time link of the first security officer."""
        result = self.shomei("officer", "bootstrap")
        assert result.returncode == 0, result.stdout + result.stderr
        found = LINK.search(result.stdout)
        assert found, result.stdout
        return found.group(0)

    def query(self, statement: Any) -> list[dict[str, Any]]:
        """Rows of the instance's SQLite database, read beside the running server."""
        engine = create_database_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(statement)]
        finally:
            engine.dispose()

    def change(self, statement: Any) -> None:
        """One write to the instance's database, beside the running server."""
        engine = create_database_engine(self.settings.effective_database_url)
        try:
            with engine.begin() as connection:
                connection.execute(statement)
        finally:
            engine.dispose()

    def log_tail(self, lines: int = 40) -> str:
        """The server's last log lines, for assertion messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def ca_files(self, directory: Path) -> dict[str, Path]:
        """root.pem and issuing.pem as the server publishes them over plain HTTP."""
        files = {}
        with httpx.Client(timeout=30) as client:
            for role in ("root", "issuing"):
                response = client.get(f"{self.pki_url}/{role}.pem")
                assert response.status_code == 200, response.text
                files[role] = directory / f"{role}.pem"
                files[role].write_bytes(response.content)
        return files

    def ocsp(self, files: dict[str, Path], certificate: Path) -> str:
        """`openssl ocsp` against the server's responder; the response must verify."""
        result = openssl(
            "ocsp",
            "-issuer",
            files["issuing"],
            "-cert",
            certificate,
            "-url",
            f"{self.pki_url}/ocsp",
            "-CAfile",
            files["root"],
        )
        assert "Response verify OK" in result.stderr, result.stdout + result.stderr
        return result.stdout

    @contextmanager
    def register_officer(
        self, browser: Browser, link: str, label: str = "virtual key", **options: Any
    ) -> Iterator[Registered]:
        """An officer in a browser context of their own (`options` for it) who registered a
        key through `link`; the context is closed at the end."""
        officer = OfficerBrowser.open(browser, self, **options)
        try:
            officer.register(link, label)
            yield Registered(
                officer,
                link,
                officer.page.url,
                officer.page.locator("p.signed-in").inner_text().strip(),
                list(officer.watched.problems),
            )
        finally:
            officer.close()


@dataclass
class OfficerBrowser:
    """One person at the console: a browser context, its one page, and their security key.

    The virtual authenticator belongs to the page's target, so the officer keeps one page.
    """

    server: ConsoleServer
    context: BrowserContext
    watched: Watched
    cdp: CDPSession
    authenticator_id: str

    @classmethod
    def open(cls, browser: Browser, server: ConsoleServer, **options: Any) -> OfficerBrowser:
        context = browser.new_context(**{"ignore_https_errors": False, **options})
        watched = watch(context)
        context.set_default_timeout(CEREMONY_MS)
        cdp = context.new_cdp_session(watched.page)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        return cls(server, context, watched, cdp, added["authenticatorId"])

    @property
    def page(self) -> Page:
        return self.watched.page

    def close(self) -> None:
        self.context.close()

    def goto(self, path: str) -> Response:
        """Open a console page (a path or a whole URL); the server's answer."""
        url = path if path.startswith("https://") else f"{self.server.base_url}{path}"
        response = self.page.goto(url)
        assert response is not None
        return response

    def status_text(self) -> str:
        """The message officer.js shows when a ceremony fails ("" while hidden)."""
        status = self.page.locator("#webauthn-status")
        return "" if status.is_hidden() else status.inner_text().strip()

    def _failed(self, path: str) -> str:
        return (
            f"not at {path} but {self.page.url}; the page says {self.status_text()!r};"
            f" problems {self.watched.problems}; server log:\n{self.server.log_tail()}"
        )

    def _wait_for_path(self, path: str) -> None:
        """Wait until the page is at `path`; on a timeout, say what the page and server said."""
        try:
            self.page.wait_for_url(f"{self.server.base_url}{path}", timeout=CEREMONY_MS)
        except PlaywrightTimeoutError as error:
            raise AssertionError(self._failed(path)) from error

    def register(self, link: str, label: str = "virtual key") -> None:
        """Open an invitation link and register this officer's key: signed in at /officer/."""
        response = self.goto(link)
        assert response.status == 200, self.page.content()
        self.page.locator("#key-label").fill(label)
        self.page.locator("#register").click()
        self._wait_for_path("/officer/")

    def sign_in(self) -> None:
        """The sign-in page, the key: the overview."""
        self.goto("/officer/sign-in")
        self.page.locator("#sign-in").click()
        self._wait_for_path("/officer/")

    def sign_out(self) -> None:
        """The navigation's "Sign out" button: the sign-in page."""
        self.page.locator("nav.console-nav form[action='/officer/sign-out'] button").click()
        self._wait_for_path("/officer/sign-in")

    def signed_in(self) -> None:
        """Signed in, whatever an earlier test left: sign in again when the console asks."""
        self.goto("/officer/")
        if self.page.url.endswith("/officer/sign-in"):
            self.sign_in()

    def submit_with_step_up(self, form: str, path: str) -> Response:
        """Submit `form` (a selector): officer.js asks the key first; then the page at `path`,
        whose answer is returned (it may be an error page, not a redirect)."""
        # A navigation, not the URL: the answer may come back to the page it was sent from.
        try:
            with self.page.expect_navigation(
                url=f"{self.server.base_url}{path}", timeout=CEREMONY_MS
            ) as navigation:
                self.page.locator(f"{form} button[type=submit]").click()
        except PlaywrightTimeoutError as error:
            raise AssertionError(self._failed(path)) from error
        response = navigation.value
        assert response is not None
        return response

    def invite(self, display_name: str, role: str) -> str:
        """Invite an officer from /officer/officers (after a step-up): the link shown once."""
        self.goto("/officer/officers")
        self.page.locator("#display_name").fill(display_name)
        self.page.locator("#role").select_option(role)
        self.submit_with_step_up(
            "form[action='/officer/officers/invite']", "/officer/officers/invite"
        )
        return str(self.page.locator("#invitation-link").inner_text()).strip()

    @contextmanager
    def invite_and_register(
        self,
        browser: Browser,
        display_name: str,
        role: str,
        label: str = "virtual key",
        **options: Any,
    ) -> Iterator[Invited]:
        """`invite`, then the invited officer registers through the link as
        ConsoleServer.register_officer has them; with what this officer's page showed."""
        self.signed_in()
        before = len(self.watched.problems)
        link = self.invite(display_name, role)
        problems = self.watched.problems[before:]
        text = self.page.locator("main").inner_text()
        with self.server.register_officer(browser, link, label, **options) as registered:
            yield Invited(registered, problems, text)

    @contextmanager
    def on_iphone(self, browser: Browser, playwright: Playwright) -> Iterator[Watched]:
        """This officer's session, signed in, in an iPhone 13 of its own (no key is needed to
        read pages); the context is closed at the end."""
        self.signed_in()
        context = browser.new_context(
            **device(playwright, "iphone"),
            **ENGLISH,
            storage_state=self.context.storage_state(),
            ignore_https_errors=False,
        )
        try:
            yield watch(context)
        finally:
            context.close()

    def csrf_token(self) -> str:
        token = self.page.locator("meta[name=csrf-token]").get_attribute("content")
        assert token
        return str(token)

    def post_form(self, path: str, fields: dict[str, str]) -> int:
        """A form POST from the page's own origin with its cookies (fetch): the status."""
        status: int = self.page.evaluate(
            """([path, fields]) => fetch(path, {
                method: "POST", credentials: "same-origin", redirect: "manual",
                body: new URLSearchParams(fields)
            }).then((response) => response.status)""",
            [path, fields],
        )
        return status

    # The key itself, through the DevTools protocol.

    def credentials(self) -> list[dict[str, Any]]:
        got = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        credentials: list[dict[str, Any]] = got["credentials"]
        return credentials

    def replace_credential(self, credential: dict[str, Any], sign_count: int) -> None:
        """The same credential (id, private key, RP, user handle) with another counter."""
        self.cdp.send(
            "WebAuthn.removeCredential",
            {"authenticatorId": self.authenticator_id, "credentialId": credential["credentialId"]},
        )
        self.add_credential({**credential, "signCount": sign_count})

    def add_credential(self, credential: dict[str, Any]) -> None:
        """Put a credential (as `credentials` lists it) into the officer's authenticator."""
        self.cdp.send(
            "WebAuthn.addCredential",
            {
                "authenticatorId": self.authenticator_id,
                "credential": {
                    "credentialId": credential["credentialId"],
                    "isResidentCredential": True,
                    "rpId": credential["rpId"],
                    "privateKey": credential["privateKey"],
                    "userHandle": credential["userHandle"],
                    "signCount": credential["signCount"],
                },
            },
        )


@dataclass
class Registered:
    """An officer who registered through an invitation link, and what they saw doing it."""

    officer: OfficerBrowser
    link: str
    landed: str
    signed_in_as: str
    problems: list[str] = field(default_factory=list)


@dataclass
class Invited:
    """An officer invited from the console, registered in a context of their own."""

    registered: Registered
    invited_page_problems: list[str]
    invited_page_text: str

    @property
    def officer(self) -> OfficerBrowser:
        return self.registered.officer


def widths(page: Page) -> tuple[int, int]:
    """The page's (client width, scroll width): a larger scroll width scrolls sideways."""
    client, scroll = page.evaluate(
        "[document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    return int(client), int(scroll)


def phone_widths(watched: Watched, url: str) -> tuple[int, int]:
    """`url` opened on a phone's page, which must answer 200 there with no wide table
    scrolling the page: its widths, once loaded."""
    response = watched.page.goto(url)
    assert response is not None
    assert response.status == 200, (url, watched.page.url)
    assert watched.page.url == url
    watched.page.wait_for_load_state("networkidle")
    measured = widths(watched.page)
    # Wide tables scroll inside their own container, never the page.
    assert watched.page.evaluate(UNCONTAINED_TABLES) == 0, url
    return measured


def android_identity(server: ShomeiServer, invitation: Invitation, directory: Path) -> Identity:
    """flow.py's Android phone (httpx) walks `invitation`: the .p12 it downloaded into
    `directory`, opened by openssl."""
    with Phone(server, language="en", user_agent=PIXEL) as phone:
        credentials = phone.enroll(invitation)
        download = phone.download(credentials, "android")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/x-pkcs12"
    p12 = directory / "phone.p12"
    p12.write_bytes(download.content)
    return open_pkcs12(p12, credentials.download_password)
