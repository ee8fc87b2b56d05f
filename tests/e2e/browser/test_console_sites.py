"""Relying sites in the officers' console, in headless Chromium: a registration officer
registers a site (its API key and webhook secret shown once, the key stored hashed), the key
calls the JSON API, keys are made and revoked at the console, a webhook to a failing receiver
shows as pending in the deliveries table and is delivered, signed as the README says, once the
receiver recovers; other roles are refused; the pages fit a phone.

A Shomei instance of this module's own (`shomei init`, `shomei serve`, `shomei officer
bootstrap` in child processes) and a real HTTP receiver on 127.0.0.1 for the webhooks. The
officers, the site and its events are made once (module scope); each test states one thing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Playwright
from sqlalchemy import select, update

from pwa_server.store.tables import api_keys, outbox_messages, sites
from tests.e2e.browser.officer import (
    PHONE_WIDTH,
    ConsoleServer,
    Invited,
    OfficerBrowser,
    phone_widths,
    widths,
)
from tests.e2e.journey.flow import Invitation, Phone
from tests.sites.test_webhook_delivery import readme_verify_signature

SITE = "shop"
SITE_PATH = f"/officer/sites/{SITE}"
RETURN_URL = "https://shop.example/shomei/back"
API_KEY = re.compile(r"shk_([a-z0-9]{16})_([A-Za-z0-9_-]{43})")
WEBHOOK_SECRET = re.compile(r"whsec_[0-9a-f]{32,}")
LOCK_LIMIT = 6  # one_time_password_max_failures, the seed's default
WRONG = "00000000"
# The sender runs every ~2 s in each worker; an attempt answers at once.
DELIVERY_WAIT_SECONDS = 20.0


# --- a webhook receiver -------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One POST as the receiver got it, and the status it answered."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    answered: int


class Receiver:
    """A site's webhook endpoint: an HTTP server on loopback that records every request and
    answers `status` (500 until a test changes it)."""

    def __init__(self) -> None:
        self.status = 500
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    answered = receiver.status
                    receiver.requests.append(Received(self.path, headers, body, answered))
                self.send_response(answered)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the requests are recorded, not logged."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/shomei"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# --- the instance, the database, the browser ----------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


def api(console: ConsoleServer, key: str) -> httpx.Client:
    """The JSON API as a site calls it: HTTPS trusting the instance's CA, the key as bearer."""
    return console.client(
        base_url=f"{console.base_url}/api/v1", headers={"authorization": f"Bearer {key}"}
    )


# --- the site, its keys and its events ----------------------------------------------------


@dataclass
class Registered:
    """What the registration officer saw registering the site, and on the pages after."""

    status: int
    api_key: str
    webhook_secret: str
    secrets_widths: tuple[int, int]
    site_page: str
    site_page_reloaded: str
    list_page: str
    problems: list[str]


@pytest.fixture(scope="module")
def registered(registration_officer: Invited, receiver: Receiver) -> Registered:
    officer = registration_officer.officer
    officer.signed_in()
    before = len(officer.watched.problems)
    page = officer.page
    officer.goto("/officer/sites")
    page.locator("#name").fill(SITE)
    page.locator("#display_name").fill("Example Shop")
    page.locator("#return_urls").fill(RETURN_URL)
    page.locator("#webhook_url").fill(receiver.url)
    with page.expect_response(f"{officer.server.base_url}/officer/sites") as answer:
        officer.submit_with_step_up("form[action='/officer/sites']", "/officer/sites")
    shown_key = page.locator("#api-key")
    assert shown_key.count() == 1, page.locator("main").inner_text()
    api_key = shown_key.inner_text().strip()
    webhook_secret = page.locator("#webhook-secret").inner_text().strip()
    secrets_widths = widths(page)
    # Away from the page that showed them: the site's own page, then a reload of it.
    page.get_by_role("link", name="Back to the site").click()
    page.wait_for_url(f"{officer.server.base_url}{SITE_PATH}")
    site_page = page.content()
    page.reload()
    site_page_reloaded = page.content()
    officer.goto("/officer/sites")
    return Registered(
        status=answer.value.status,
        api_key=api_key,
        webhook_secret=webhook_secret,
        secrets_widths=secrets_widths,
        site_page=site_page,
        site_page_reloaded=site_page_reloaded,
        list_page=page.content(),
        problems=officer.watched.problems[before:],
    )


@pytest.fixture(scope="module")
def api_enrollment(console: ConsoleServer, registered: Registered) -> httpx.Response:
    """`POST /api/v1/enrollments` with the key shown at registration."""
    with api(console, registered.api_key) as client:
        return client.post(
            "/enrollments",
            json={
                "user_id": "u-1042",
                "email": "hanako@example.jp",
                "display_name": "Hanako",
                "return_url": RETURN_URL,
            },
            headers={"idempotency-key": "order-1042"},
        )


@dataclass
class Rotated:
    """A second key made at the console, the first revoked there, and the API's answers."""

    second_key: str
    second_shown_again: bool
    first_key_line: str
    first_key_status: int
    second_key_status: int
    problems: list[str]


@pytest.fixture(scope="module")
def rotated(
    console: ConsoleServer,
    registration_officer: Invited,
    registered: Registered,
    api_enrollment: httpx.Response,  # made with the first key before it is revoked
) -> Rotated:
    officer = registration_officer.officer
    officer.signed_in()
    before = len(officer.watched.problems)
    page = officer.page
    first_key = API_KEY.fullmatch(registered.api_key)
    assert first_key is not None
    first_id = first_key.group(1)

    officer.goto(SITE_PATH)
    page.locator("#label").fill("second server")
    officer.submit_with_step_up(f"form[action='{SITE_PATH}/keys']", f"{SITE_PATH}/keys")
    second_key = page.locator("#api-key").inner_text().strip()

    officer.goto(SITE_PATH)
    second_shown_again = second_key in page.content()
    revoke = f"form[action='{SITE_PATH}/keys/{first_id}/revoke']"
    officer.submit_with_step_up(revoke, SITE_PATH)
    first_key_line = page.locator("#api-keys li", has_text=first_id).inner_text().strip()

    with api(console, registered.api_key) as first, api(console, second_key) as second:
        first_status = first.get("/webhook-deliveries").status_code
        second_status = second.get("/webhook-deliveries").status_code
    return Rotated(
        second_key=second_key,
        second_shown_again=second_shown_again,
        first_key_line=first_key_line,
        first_key_status=first_status,
        second_key_status=second_status,
        problems=officer.watched.problems[before:],
    )


@dataclass(frozen=True)
class Delivery:
    """A row of the site page's deliveries table."""

    message_id: int
    event: str
    state: str
    attempts: int
    error: str


def deliveries(officer: OfficerBrowser) -> list[Delivery]:
    """The site page, loaded afresh: its deliveries table."""
    officer.goto(SITE_PATH)
    rows = []
    for row in officer.page.locator("#deliveries tr.delivery").all():
        cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
        rows.append(
            Delivery(
                message_id=int(cells[0]),
                event=cells[1],
                state=row.locator(".delivery-state").inner_text().strip(),
                attempts=int(row.locator(".delivery-attempts").inner_text().strip()),
                error=cells[5],
            )
        )
    return rows


def wait_for_delivery(
    officer: OfficerBrowser, event: str, done: Callable[[Delivery], bool]
) -> Delivery:
    """Reload the site page until the `event` row satisfies `done`."""
    deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
    seen: list[Delivery] = []
    while time.monotonic() < deadline:
        seen = [row for row in deliveries(officer) if row.event == event]
        if seen and done(seen[0]):
            return seen[0]
        time.sleep(0.5)
    raise AssertionError(f"{event}: the page shows {seen}; log:\n{officer.server.log_tail()}")


@dataclass
class Webhook:
    """enrollment.locked: the page while the receiver fails, and after it recovers."""

    enrollment_id: str
    lock_statuses: list[int]
    pending: Delivery
    delivered: Delivery
    requests: list[Received]
    problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def webhook(
    console: ConsoleServer,
    registration_officer: Invited,
    receiver: Receiver,
    registered: Registered,
    api_enrollment: httpx.Response,
) -> Webhook:
    """Six wrong one-time passwords lock the site's enrollment: the cheapest real event."""
    assert api_enrollment.status_code == 201, api_enrollment.text
    made = api_enrollment.json()
    assert made["one_time_password"] != WRONG
    invitation = Invitation(
        enrollment_id=made["id"],
        enrollment_url=made["enrollment_url"],
        one_time_password=made["one_time_password"],
        expires_at=made["expires_at"],
        email="hanako@example.jp",
    )
    with Phone(console, language="en") as phone:
        phone.get(invitation.enrollment_url)
        statuses = [
            phone.submit_one_time_password(invitation, WRONG).status_code for _ in range(LOCK_LIMIT)
        ]

    officer = registration_officer.officer
    officer.signed_in()
    before = len(officer.watched.problems)
    pending = wait_for_delivery(officer, "enrollment.locked", lambda row: row.attempts >= 1)

    receiver.status = 200
    # This moves time: the retry is due 30 s after the failure; the backoff itself is covered
    # by tests/sites. Here only what the console shows of a retry that succeeds matters.
    console.change(
        update(outbox_messages)
        .where(outbox_messages.c.id == pending.message_id)
        .values(next_attempt_at=dt.datetime.now(dt.UTC)),
    )
    delivered = wait_for_delivery(
        officer, "enrollment.locked", lambda row: row.state == "delivered"
    )
    return Webhook(
        enrollment_id=invitation.enrollment_id,
        lock_statuses=statuses,
        pending=pending,
        delivered=delivered,
        requests=receiver.received(),
        problems=officer.watched.problems[before:],
    )


# --- 1. registration shows the secrets once -------------------------------------------------


def test_registering_a_site_shows_its_api_key_and_webhook_secret_once(
    console: ConsoleServer, registered: Registered
) -> None:
    assert registered.status == 200
    key = API_KEY.fullmatch(registered.api_key)
    assert key, registered.api_key
    assert WEBHOOK_SECRET.fullmatch(registered.webhook_secret), registered.webhook_secret
    assert registered.problems == []
    for page in (registered.site_page, registered.site_page_reloaded, registered.list_page):
        assert registered.api_key not in page
        assert key.group(2) not in page
        assert registered.webhook_secret not in page
    # The site is listed, and its page names the key by its public id only.
    assert f'href="{SITE_PATH}"' in registered.list_page
    assert key.group(1) in registered.site_page_reloaded


def test_the_database_keeps_a_hash_of_the_api_key_not_the_key(
    console: ConsoleServer, registered: Registered
) -> None:
    key = API_KEY.fullmatch(registered.api_key)
    assert key
    key_id, secret = key.groups()
    (row,) = console.query(select(api_keys).where(api_keys.c.id == key_id))
    assert row["secret_sha256"] == hashlib.sha256(secret.encode("ascii")).hexdigest()
    stored = json.dumps(
        [
            *console.query(select(api_keys)),
            *console.query(select(sites).where(sites.c.name == SITE)),
        ],
        default=str,
    )
    assert secret not in stored
    assert registered.webhook_secret not in stored


# --- 2. the key calls the API ---------------------------------------------------------------


def test_the_api_key_shown_at_registration_creates_an_enrollment(
    console: ConsoleServer, api_enrollment: httpx.Response
) -> None:
    assert api_enrollment.status_code == 201, api_enrollment.text
    made = api_enrollment.json()
    assert made["enrollment_url"].startswith(f"{console.base_url}/")
    assert made["user_id"] == "u-1042"
    assert made["one_time_password"]


# --- 3. only registration officers manage sites -------------------------------------------------


@pytest.mark.parametrize("role", ["security_officer", "auditor"])
def test_security_officers_and_auditors_may_not_manage_sites(
    request: pytest.FixtureRequest, role: str
) -> None:
    officer: OfficerBrowser = request.getfixturevalue(role).officer
    officer.signed_in()

    assert officer.goto("/officer/sites").status == 403
    assert officer.goto(SITE_PATH).status == 403


# --- 4. a second key, the first revoked -----------------------------------------------------


def test_a_revoked_key_is_refused_while_the_second_key_works(
    registered: Registered, rotated: Rotated
) -> None:
    assert API_KEY.fullmatch(rotated.second_key), rotated.second_key
    assert rotated.second_key != registered.api_key
    assert not rotated.second_shown_again
    assert "revoked" in rotated.first_key_line, rotated.first_key_line
    assert rotated.first_key_status == 401
    assert rotated.second_key_status == 200
    assert rotated.problems == []


# --- 5. a webhook retried until delivered ---------------------------------------------------


def test_a_failing_webhook_shows_pending_then_delivered_in_the_console(
    webhook: Webhook,
) -> None:
    assert webhook.lock_statuses == [400] * (LOCK_LIMIT - 1) + [423]
    assert webhook.pending.state.startswith("pending"), webhook.pending
    assert webhook.pending.attempts >= 1
    assert webhook.pending.error.startswith("HTTP 500"), webhook.pending
    assert webhook.delivered.message_id == webhook.pending.message_id
    # The column counts the failed tries (the outbox's `attempts`); the success adds none.
    assert webhook.delivered.attempts >= webhook.pending.attempts
    assert webhook.problems == []


def test_the_webhook_carries_the_documented_headers_and_a_valid_signature(
    registered: Registered, webhook: Webhook
) -> None:
    verify = readme_verify_signature()
    answered = [request.answered for request in webhook.requests]
    # The failed attempt(s), then the retry that the receiver took.
    assert len(answered) >= 2, answered
    assert answered[-1] == 200, answered
    assert set(answered[:-1]) == {500}, answered
    for request in webhook.requests:
        assert request.path == "/hooks/shomei"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["shomei-event"] == "enrollment.locked"
        # The same id on every retry, for the receiver's de-duplication.
        assert request.headers["shomei-delivery"] == str(webhook.pending.message_id)
        assert re.fullmatch(r"v1=[0-9a-f]{64}", request.headers["shomei-signature"])
        assert verify(
            registered.webhook_secret,
            request.headers["shomei-timestamp"],
            request.body,
            request.headers["shomei-signature"],
        ), request
    event = json.loads(webhook.requests[-1].body)
    assert event["type"] == "enrollment.locked"
    assert event["data"]["enrollment_id"] == webhook.enrollment_id
    assert event["data"]["failed_attempts"] == LOCK_LIMIT


# --- 6. phones, consoles and CSP --------------------------------------------------------------


def test_site_pages_fit_an_iphone_without_console_errors(
    console: ConsoleServer,
    console_browser: Browser,
    playwright: Playwright,
    registration_officer: Invited,
    registered: Registered,
    webhook: Webhook,  # the deliveries table has a row
) -> None:
    measured = {}
    with registration_officer.officer.on_iphone(console_browser, playwright) as watched:
        for path in ("/officer/sites", SITE_PATH):
            measured[path] = phone_widths(watched, f"{console.base_url}{path}")
        assert watched.page.locator("#deliveries tr.delivery").count() >= 1

    # The page that showed the secrets, on the officer's own phone.
    measured["secrets"] = registered.secrets_widths
    assert all(pair == (PHONE_WIDTH, PHONE_WIDTH) for pair in measured.values()), measured
    assert watched.problems == []
