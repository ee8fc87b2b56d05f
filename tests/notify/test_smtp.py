"""Delivery through a real SMTP server (aiosmtpd on loopback), from the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine

from pwa_server.notify.outbox import MAX_ATTEMPTS, enqueue_mail, retry_delay
from pwa_server.notify.sender import deliver_due
from pwa_server.notify.transports import DeliveryError, SmtpTransport
from testbed.serving import free_port
from tests.notify.conftest import (
    NOW,
    SUBJECT,
    TEXT,
    Inbox,
    ServerFactory,
    SmtpServer,
    TlsFiles,
    enqueue_and_roll_back,
    japanese_mail,
    outbox_row,
)


def plain(server: SmtpServer) -> SmtpTransport:
    return SmtpTransport(host=server.host, port=server.port, security="none", timeout=5)


def enqueue(engine: Engine, to: str = "yamada@example.jp") -> int:
    with engine.begin() as connection:
        return enqueue_mail(connection, japanese_mail(to), now=NOW)


def received(server: SmtpServer) -> list[EmailMessage]:
    """What the server accepted, parsed by the standard library."""
    parsed = []
    for envelope in server.inbox.envelopes:
        assert isinstance(envelope.original_content, bytes)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        parsed.append(message)
    return parsed


def deliver(engine: Engine, transport: SmtpTransport, now: dt.datetime) -> int:
    return asyncio.run(deliver_due(engine, transport, now=now))


def test_an_enqueued_mail_arrives_intact(engine: Engine, smtp_server: SmtpServer) -> None:
    message_id = enqueue(engine)
    assert deliver(engine, plain(smtp_server), NOW) == 1
    [envelope] = smtp_server.inbox.envelopes
    assert envelope.mail_from == "no-reply@example.jp"
    assert envelope.rcpt_tos == ["yamada@example.jp"]
    [mail] = received(smtp_server)
    assert mail["Subject"] == SUBJECT
    assert mail["From"].addresses[0].display_name == "証明書サービス"
    assert mail.get_content() == TEXT
    stored = outbox_row(engine, message_id)
    assert stored.delivered_at == NOW
    assert stored.attempts == 0
    # Sent once: the next round finds nothing.
    assert deliver(engine, plain(smtp_server), NOW + dt.timedelta(hours=1)) == 0
    assert len(smtp_server.inbox.envelopes) == 1


def test_a_rolled_back_mail_is_never_sent(engine: Engine, smtp_server: SmtpServer) -> None:
    with pytest.raises(RuntimeError, match="domain change failed"):
        enqueue_and_roll_back(engine)
    assert deliver(engine, plain(smtp_server), NOW + dt.timedelta(days=1)) == 0
    assert smtp_server.inbox.envelopes == []


def test_temporary_refusals_back_off_until_the_server_accepts(
    engine: Engine, smtp_server_factory: ServerFactory
) -> None:
    server = smtp_server_factory(Inbox(data_reply="451 4.3.0 try again later"))
    message_id = enqueue(engine)
    now = NOW
    waits = []
    for attempt in (1, 2, 3):
        assert deliver(engine, plain(server), now) == 0
        stored = outbox_row(engine, message_id)
        assert stored.attempts == attempt
        assert stored.last_error is not None
        assert "451" in stored.last_error
        assert "try again later" in stored.last_error
        assert stored.delivered_at is None
        assert stored.failed_at is None
        waits.append(stored.next_attempt_at - now)
        # Before its time it is left alone, even though the server would now accept it.
        assert deliver(engine, plain(server), stored.next_attempt_at - dt.timedelta(seconds=1)) == 0
        now = stored.next_attempt_at
    assert waits == [retry_delay(1), retry_delay(2), retry_delay(3)]
    assert waits[1] == 2 * waits[0]
    assert waits[2] == 2 * waits[1]
    server.inbox.data_reply = "250 OK"
    assert deliver(engine, plain(server), now) == 1
    [mail] = received(server)
    assert mail["Subject"] == SUBJECT
    stored = outbox_row(engine, message_id)
    assert stored.delivered_at == now
    assert stored.attempts == 3


def test_an_unreachable_server_makes_the_mail_fail_after_max_attempts(
    engine: Engine, smtp_server_factory: ServerFactory
) -> None:
    message_id = enqueue(engine)
    nobody = SmtpTransport(host="127.0.0.1", port=free_port(), security="none", timeout=5)
    now = NOW
    for _attempt in range(MAX_ATTEMPTS):
        assert deliver(engine, nobody, now) == 0
        stored = outbox_row(engine, message_id)
        now = stored.next_attempt_at
    assert stored.attempts == MAX_ATTEMPTS
    assert stored.failed_at is not None
    assert stored.last_error is not None
    assert "SMTPConnectError" in stored.last_error
    # Failed for good: even a server that works now never sees it.
    server = smtp_server_factory()
    assert deliver(engine, plain(server), now + dt.timedelta(days=30)) == 0
    assert server.inbox.envelopes == []


def test_a_refused_recipient_fails_at_once(
    engine: Engine, smtp_server_factory: ServerFactory
) -> None:
    server = smtp_server_factory(Inbox(rcpt_reply="550 5.1.1 no such user"))
    message_id = enqueue(engine, "nobody@example.jp")
    assert deliver(engine, plain(server), NOW) == 0
    stored = outbox_row(engine, message_id)
    assert (stored.attempts, stored.failed_at) == (1, NOW)
    assert stored.last_error is not None
    assert "no such user" in stored.last_error


def test_starttls_with_login(smtp_server_factory: ServerFactory, tls_files: TlsFiles) -> None:
    inbox = Inbox()
    server = smtp_server_factory(
        inbox,
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_required=True,
    )
    transport = SmtpTransport(
        host=server.host,
        port=server.port,
        security="starttls",
        username="relay",
        password="s3cret",
        timeout=5,
        tls_context=tls_files.client_context(),
    )
    asyncio.run(transport.send(japanese_mail()))
    assert inbox.logins == ["relay"]
    [mail] = received(server)
    assert mail["Subject"] == SUBJECT
    assert "s3cret" not in repr(transport)


def test_a_wrong_password_is_a_temporary_failure(
    smtp_server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    inbox = Inbox()
    server = smtp_server_factory(
        inbox,
        tls_context=tls_files.server_context(),
        authenticator=inbox.authenticate,
        auth_required=True,
    )
    transport = SmtpTransport(
        host=server.host,
        port=server.port,
        username="relay",
        password="wrong",
        timeout=5,
        tls_context=tls_files.client_context(),
    )
    # Retried, not dropped: the operator may fix the password while the mail waits.
    with pytest.raises(DeliveryError, match="SMTPAuthenticationError") as raised:
        asyncio.run(transport.send(japanese_mail()))
    assert not raised.value.permanent
    assert inbox.envelopes == []


def test_starttls_is_never_skipped(smtp_server: SmtpServer) -> None:
    transport = SmtpTransport(host=smtp_server.host, port=smtp_server.port, timeout=5)
    with pytest.raises(DeliveryError, match="STARTTLS") as raised:
        asyncio.run(transport.send(japanese_mail()))
    assert not raised.value.permanent
    assert smtp_server.inbox.envelopes == []


def test_starttls_checks_the_server_certificate(
    smtp_server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = smtp_server_factory(tls_context=tls_files.server_context())
    # The system's CAs do not know our self-signed test certificate.
    transport = SmtpTransport(host=server.host, port=server.port, timeout=5)
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(transport.send(japanese_mail()))
    assert server.inbox.envelopes == []


def test_implicit_tls(smtp_server_factory: ServerFactory, tls_files: TlsFiles) -> None:
    server = smtp_server_factory(ssl_context=tls_files.server_context())
    transport = SmtpTransport(
        host=server.host,
        port=server.port,
        security="tls",
        timeout=5,
        tls_context=tls_files.client_context(),
    )
    asyncio.run(transport.send(japanese_mail()))
    [mail] = received(server)
    assert mail.get_content() == TEXT
