"""Headless Chromium (Debian's, driven by Python Playwright) against the session's `server`.

Chromium trusts the server's TLS key only (testbed/chromium.py). Playwright's client-certificate
proxy (in its Node driver) verifies the upstream server on its own, so the driver gets our
root CA through NODE_EXTRA_CA_CERTS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)

from pwa_server.settings import Settings
from testbed.chromium import pinned_chromium
from testbed.serving import ShomeiServer

if TYPE_CHECKING:
    # Only for annotations: officer.py imports this module.
    from tests.e2e.browser.officer import ConsoleServer, Invited, Registered

DEVICES = {"iphone": "iPhone 13", "pixel": "Pixel 7"}
# Officers' contexts: the console tests compare its English texts.
ENGLISH: dict[str, Any] = {"locale": "en-US"}
# Invitations made ahead in parallel: each CLI run costs ~2 s of start-up.
INVITATIONS = 4

PLAYWRIGHT_NOTE = "blocked by Playwright"
# Reports CSP violations to Python; injected by the DevTools protocol, so CSP does not block it.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  const { violatedDirective, blockedURI, sourceFile, lineNumber } = event;
  const where = `${sourceFile}:${lineNumber}`;
  window.__shomeiReportViolation(`${violatedDirective} blocked ${blockedURI} at ${where}`);
});
"""


@dataclass(frozen=True)
class Invitation:
    """What `shomei enroll create --json` prints."""

    enrollment_id: str
    enrollment_url: str
    one_time_password: str


def create_invitation(server: ShomeiServer, user_id: str, email: str) -> Invitation:
    """An enrollment made with the real CLI, its URL pointing at the running `server`."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pwa_server.cli",
            "enroll",
            "create",
            "--user-id",
            user_id,
            "--email",
            email,
            "--json",
        ],
        env=server.environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    return Invitation(made["enrollment_id"], made["enrollment_url"], made["one_time_password"])


class InvitationPool:
    """Invitations made ahead in the background (while Chromium starts), each handed out once."""

    def __init__(self, server: ShomeiServer, count: int) -> None:
        self.server = server
        self._made = 0
        self._executor = ThreadPoolExecutor(max_workers=count)
        self._pending: list[Future[Invitation]] = [
            self._executor.submit(create_invitation, server, *self._identity())
            for _ in range(count)
        ]

    def _identity(self) -> tuple[str, str]:
        self._made += 1
        return f"browser-user-{self._made}", f"browser{self._made}@example.jp"

    def take(self) -> Invitation:
        """A fresh invitation nobody else uses."""
        if not self._pending:
            return create_invitation(self.server, *self._identity())
        return self._pending.pop(0).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="package")
def invitations(server: ShomeiServer) -> Iterator[InvitationPool]:
    pool = InvitationPool(server, INVITATIONS)
    yield pool
    pool.close()


@pytest.fixture(scope="package")
def playwright(initialised: Settings) -> Iterator[Playwright]:
    """The Playwright driver, trusting our root CA for its client-certificate proxy."""
    previous = os.environ.get("NODE_EXTRA_CA_CERTS")
    os.environ["NODE_EXTRA_CA_CERTS"] = str(initialised.tls_dir / "client-ca.pem")
    try:
        with sync_playwright() as started:
            yield started
    finally:
        if previous is None:
            os.environ.pop("NODE_EXTRA_CA_CERTS", None)
        else:
            os.environ["NODE_EXTRA_CA_CERTS"] = previous


@pytest.fixture(scope="package")
def browser(playwright: Playwright, server: ShomeiServer) -> Iterator[Browser]:
    """Chromium for the session's `server`."""
    launched = pinned_chromium(playwright, server)
    yield launched
    launched.close()


def device(playwright: Playwright, name: str) -> dict[str, Any]:
    """Playwright's descriptor of a phone, for Chromium (the WebKit default dropped)."""
    descriptor = dict(playwright.devices[DEVICES[name]])
    descriptor.pop("default_browser_type", None)
    return descriptor


@dataclass
class Watched:
    """A page with every console error, uncaught exception and CSP violation recorded."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def h1(self) -> str:
        return self.page.locator("h1").inner_text().strip()


def watch(context: BrowserContext) -> Watched:
    """A new page of `context` whose problems are recorded."""
    page = context.new_page()
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        # Warnings too: Chromium reports deprecated or ignored markup as warnings. Playwright's
        # own note, when a context blocks service workers, is no fault of the page.
        if message.type in {"error", "warning"} and not message.text.endswith(PLAYWRIGHT_NOTE):
            watched.problems.append(f"console {message.type}: {message.text} ({message.location})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    page.expose_function(
        "__shomeiReportViolation", lambda text: watched.problems.append(f"CSP: {text}")
    )
    page.add_init_script(_CSP_LISTENER)
    return watched


@pytest.fixture
def open_context(
    browser: Browser, playwright: Playwright
) -> Iterator[Callable[..., BrowserContext]]:
    """A factory of contexts (`device` name or None, plus new_context options), all closed."""
    contexts: list[BrowserContext] = []

    def make(device_name: str | None = None, **options: Any) -> BrowserContext:
        settings = device(playwright, device_name) if device_name else {}
        context = browser.new_context(**{**settings, "ignore_https_errors": False, **options})
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def console_browser(playwright: Playwright, console: ConsoleServer) -> Iterator[Browser]:
    """Chromium for the module's `console`."""
    launched = pinned_chromium(playwright, console)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def bootstrap_link(console: ConsoleServer) -> str:
    """`shomei officer bootstrap`: the link the first security officer registers with."""
    return console.bootstrap_link()


@pytest.fixture(scope="module")
def security_officer(
    console: ConsoleServer, console_browser: Browser, bootstrap_link: str
) -> Iterator[Registered]:
    """The first security officer, registered through the bootstrap link."""
    with console.register_officer(console_browser, bootstrap_link, **ENGLISH) as registered:
        yield registered


@pytest.fixture(scope="module")
def registration_officer(
    console_browser: Browser, playwright: Playwright, security_officer: Registered
) -> Iterator[Invited]:
    """Invited by the security officer; works at the console from a phone (iPhone 13)."""
    with security_officer.officer.invite_and_register(
        console_browser,
        "Registration Officer One",
        "registration_officer",
        **device(playwright, "iphone"),
        **ENGLISH,
    ) as invited:
        yield invited


@pytest.fixture(scope="module")
def auditor(console_browser: Browser, security_officer: Registered) -> Iterator[Invited]:
    """Invited by the security officer."""
    with security_officer.officer.invite_and_register(
        console_browser, "Auditor One", "auditor", **ENGLISH
    ) as invited:
        yield invited


# Kept after the run (var/ is not in git), for a person to look at.
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots" / "browser"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder full-page screenshots go to: var/screenshots/browser/ of the checkout."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
