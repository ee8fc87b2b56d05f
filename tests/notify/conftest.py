"""Real components for the notify tests: migrated databases and aiosmtpd SMTP servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from pwa_server.notify.mail import compose
from pwa_server.notify.outbox import OutboxMessage, enqueue_mail, message_by_id
from testbed.serving import free_port

NOW = dt.datetime(2025, 4, 1, 9, 0, 0, tzinfo=dt.UTC)
SUBJECT = "【証明書】ダウンロードのご案内 — 山田 太郎 様"
TEXT = "山田 太郎 様\n\n証明書ユーザーID: shomei-0042\nhttps://localhost:8443/d/ABC\n"


def japanese_mail(
    to: str | list[str | Address] = "yamada@example.jp", **overrides: Any
) -> EmailMessage:
    """A mail as the enrollment flow sends it: Japanese subject and body."""
    values: dict[str, Any] = {
        "sender": "証明書サービス <no-reply@example.jp>",
        "to": to,
        "subject": SUBJECT,
        "text": TEXT,
        "message_id_domain": "example.jp",
        "date": NOW,
    }
    values.update(overrides)
    return compose(**values)


def outbox_row(engine: Engine, message_id: int) -> OutboxMessage:
    """The outbox row `message_id` as it is now."""
    with engine.connect() as connection:
        message = message_by_id(connection, message_id)
    assert message is not None
    return message


def enqueue_and_roll_back(engine: Engine) -> None:
    """A domain change that enqueues a mail and then fails, so its transaction rolls back."""
    with engine.begin() as connection:
        enqueue_mail(connection, japanese_mail(), now=NOW)
        raise RuntimeError("domain change failed")


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepts, or answers with a chosen refusal."""

    envelopes: list[Envelope] = field(default_factory=list)
    data_reply: str = "250 OK"
    rcpt_reply: str | None = None
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
        return self.data_reply

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any
    ) -> AuthResult:
        """Accept the login `relay` / `s3cret` only."""
        assert isinstance(auth, LoginPassword)
        ok = auth.login == b"relay" and auth.password == b"s3cret"
        if ok:
            self.logins.append(auth.login.decode())
        # handled=False: aiosmtpd then answers 535 itself (its default assumes we replied).
        return AuthResult(success=ok, handled=False)


@dataclass(frozen=True)
class SmtpServer:
    """A running aiosmtpd server on loopback."""

    host: str
    port: int
    inbox: Inbox


ServerFactory = Callable[..., SmtpServer]


@pytest.fixture
def smtp_server_factory() -> Iterator[ServerFactory]:
    """Starts aiosmtpd servers with the given SMTP options; stops them all afterwards."""
    controllers: list[Controller] = []

    def start(inbox: Inbox | None = None, **options: Any) -> SmtpServer:
        handler = inbox or Inbox()
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer("127.0.0.1", controller.port, handler)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: ServerFactory) -> SmtpServer:
    """A plain SMTP server that accepts everything."""
    return smtp_server_factory()


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed identity for 127.0.0.1, and a client context that trusts it."""

    certificate: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate for the test SMTP servers' TLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("smtp-tls")
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    files.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files
