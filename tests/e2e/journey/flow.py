"""What a person does and sees in the journey, over real sockets: a phone's browser (an httpx
client with its own session), the mails in an SMTP inbox, and the files the phone gets."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, select, update

from pwa_server.store.tables import certificates, enrollments
from tests.conftest import openssl, run_tool

if TYPE_CHECKING:
    from testbed.serving import ShomeiServer

MAIL_WAIT_SECONDS = 20.0
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile"
PIXEL = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/126.0 Mobile"
TRACEBACK_MARKERS = ("Traceback", 'File "', "Error:", "starlette", "sqlalchemy")


@dataclass(frozen=True)
class Invitation:
    """What `shomei enroll create --json` printed, and where the mail should go."""

    enrollment_id: str
    enrollment_url: str
    one_time_password: str
    expires_at: str
    email: str

    @classmethod
    def from_cli(cls, stdout: str, email: str) -> Invitation:
        printed = json.loads(stdout)
        return cls(
            enrollment_id=printed["enrollment_id"],
            enrollment_url=printed["enrollment_url"],
            one_time_password=printed["one_time_password"],
            expires_at=printed["expires_at"],
            email=email,
        )


@dataclass(frozen=True)
class Mail:
    """One message as the SMTP server received it."""

    mail_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None, "the mail has no text/plain part"
        content: str = body.get_content()
        return content


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps every accepted message, and lets tests wait for one."""

    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        mail = Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message)
        with self._arrived:
            self.mails.append(mail)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, to: str, subject: str, *, timeout: float = MAIL_WAIT_SECONDS) -> Mail:
        """The first mail to `to` whose subject contains `subject`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for mail in self.mails:
                    if to in mail.recipients and subject in mail.subject:
                        return mail
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(mail.recipients, mail.subject) for mail in self.mails]
                    raise AssertionError(f"no mail {subject!r} to {to} in {timeout} s: {seen}")
                self._arrived.wait(remaining)


# --- pages ------------------------------------------------------------------------------


def csrf_token_of(page: str) -> str | None:
    found = re.search(r'name="csrf_token" value="([^"]*)"', page)
    return found.group(1) if found else None


def element_text(page: str, element_id: str) -> str:
    """The text inside the element with `element_id` (tags dropped, entities decoded)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no element #{element_id} in the page"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(2))).strip()


def heading(page: str) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert found, "the page has no h1"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def error_message(page: str) -> str:
    found = re.search(r'class="error"[^>]*>(.*?)</p>', page, re.S)
    assert found, "the page shows no error message"
    return html.unescape(found.group(1)).strip()


def check_status_of(page: str) -> str:
    found = re.search(r'<h1 id="check-result" data-status="([^"]+)"', page)
    assert found, "the page has no h1#check-result"
    return found.group(1)


def assert_person_page(response: httpx.Response) -> None:
    """An HTML page written for a person: no traceback, no framework's own error text."""
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1" in response.text
    for marker in TRACEBACK_MARKERS:
        assert marker not in response.text, f"{marker!r} in a page shown to a person"


# --- the phone's browser ----------------------------------------------------------------


@dataclass(frozen=True)
class DownloadCredentials:
    """What the download password page shows, once."""

    certificate_user_id: str
    download_password: str


class Phone:
    """A phone's browser: one session (cookie jar), a language and a user agent."""

    def __init__(
        self, server: ShomeiServer, *, language: str | None = "ja", user_agent: str = IPHONE
    ) -> None:
        headers = {"user-agent": user_agent}
        if language is not None:
            headers["accept-language"] = language
        self.server = server
        self.client = server.client(follow_redirects=True, headers=headers)
        self.csrf_token: str | None = None

    def __enter__(self) -> Phone:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.server.base_url}{path}"

    def get(self, path: str, **options: Any) -> httpx.Response:
        response = self.client.get(self.url(path), **options)
        self.csrf_token = csrf_token_of(response.text) or self.csrf_token
        return response

    def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        """Submit a form, with this session's CSRF token as the page would carry it."""
        if csrf:
            if self.csrf_token is None:
                self.get("/download")
            assert self.csrf_token is not None
            data = {"csrf_token": self.csrf_token, **data}
        response = self.client.post(self.url(path), data=data)
        if response.headers.get("content-type", "").startswith("text/html"):
            self.csrf_token = csrf_token_of(response.text) or self.csrf_token
        return response

    # The steps of the journey, by the field names of the issue.

    def submit_one_time_password(self, invitation: Invitation, value: str) -> httpx.Response:
        return self.post(invitation.enrollment_url, {"one_time_password": value})

    def register_secret(
        self, enrollment_url: str, answer: str, question: str = "first-pet"
    ) -> httpx.Response:
        return self.post(
            f"{enrollment_url}/secret",
            {"question": question, "answer": answer, "answer_confirm": answer},
        )

    def enroll(self, invitation: Invitation, answer: str = "Pochi") -> DownloadCredentials:
        """One-time password, then the secret question: the download password page."""
        opened = self.get(invitation.enrollment_url)
        assert opened.status_code == 200, opened.text
        verified = self.submit_one_time_password(invitation, invitation.one_time_password)
        assert verified.status_code == 200, verified.text
        assert str(verified.url) == f"{invitation.enrollment_url}/secret"
        registered = self.register_secret(invitation.enrollment_url, answer)
        assert registered.status_code == 200, registered.text
        return credentials_of(registered.text)

    def download(
        self, credentials: DownloadCredentials, platform: str, *, password: str | None = None
    ) -> httpx.Response:
        return self.post(
            "/download",
            {
                "certificate_user_id": credentials.certificate_user_id,
                "download_password": credentials.download_password
                if password is None
                else password,
                "platform": platform,
            },
        )

    def reissue(self, certificate_user_id: str, answer: str) -> httpx.Response:
        return self.post("/reissue", {"certificate_user_id": certificate_user_id, "answer": answer})


def credentials_of(page: str) -> DownloadCredentials:
    """The certificate user ID and the download password (its <span> groups joined)."""
    password = re.search(r'id="download-password"[^>]*>(.*?)</dd>', page, re.S)
    assert password, "the page shows no #download-password"
    groups = re.findall(r"<span>([^<]+)</span>", password.group(1))
    assert len(groups) > 1, "the download password is not grouped for typing"
    return DownloadCredentials(element_text(page, "certificate-user-id"), "".join(groups))


# --- what the phone does with the files ----------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The certificate and key taken out of a PKCS#12 by openssl, as PEM files."""

    certificate: Path
    key: Path

    @property
    def files(self) -> tuple[Path, Path]:
        return (self.certificate, self.key)


def open_pkcs12(p12: Path, password: str) -> Identity:
    """`openssl pkcs12` with the download password: the client certificate and its key."""
    certificate = p12.with_suffix(".cert.pem")
    key = p12.with_suffix(".key.pem")
    for options, out in ((("-clcerts", "-nokeys"), certificate), (("-nocerts", "-nodes"), key)):
        result = openssl("pkcs12", "-in", p12, "-passin", f"pass:{password}", *options, "-out", out)
        assert result.returncode == 0, result.stderr
    return Identity(certificate, key)


def keytool_list(p12: Path, password: str) -> str:
    """`keytool -list -storetype PKCS12` with the download password (Java's own reader)."""
    result = run_tool(
        "keytool", "-list", "-storetype", "PKCS12", "-keystore", p12, "-storepass", password
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def check(
    server: ShomeiServer,
    identity: Identity | None = None,
    *,
    as_json: bool = True,
    language: str = "en",
) -> httpx.Response:
    """The installation check on the check port, presenting `identity` if given."""
    accept = "application/json" if as_json else "text/html"
    with server.client(identity.files if identity else None) as client:
        return client.get(
            f"{server.check_url}/check",
            headers={"accept": accept, "accept-language": language},
        )


# --- the database, read and changed beside the server -------------------------------------


def enrollment_row(engine: Engine, enrollment_id: str) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(select(enrollments).where(enrollments.c.id == enrollment_id)).one()
    return dict(row._mapping)


def change_enrollment(engine: Engine, enrollment_id: str, **values: Any) -> None:
    """Move an enrollment in time (or state) as only the clock could otherwise."""
    with engine.begin() as connection:
        changed = connection.execute(
            update(enrollments).where(enrollments.c.id == enrollment_id).values(**values)
        )
    assert changed.rowcount == 1


def certificates_of(engine: Engine, enrollment_id: str) -> list[dict[str, Any]]:
    """Every certificate recorded for an enrollment, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(certificates)
            .where(certificates.c.enrollment_id == enrollment_id)
            .order_by(certificates.c.id)
        ).all()
    return [dict(row._mapping) for row in rows]
