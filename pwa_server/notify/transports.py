"""Where mails go: an SMTP relay, or a directory of .eml files when none is configured."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.notify.eml import write_eml
from pwa_server.settings import Settings

log = logging.getLogger(__name__)

Security = Literal["starttls", "tls", "none"]


class DeliveryError(ShomeiError):
    """The mail was not handed over; `permanent` when trying again cannot help."""

    kind = ErrorKind.UNAVAILABLE

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailTransport(Protocol):
    """Hands one complete message to whatever delivers it; raises when it could not."""

    async def send(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """Delivery through an SMTP relay, one connection per message.

    `starttls` insists on STARTTLS (a server that does not offer it is an error, never a
    silent downgrade to plain text); `tls` is TLS from the first byte (port 465); `none` is
    for a relay on the same host or network only. Certificates are verified against the
    system's CAs unless `tls_context` says otherwise.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.tls_context = tls_context

    def __repr__(self) -> str:  # never the password
        return f"SmtpTransport({self.host}:{self.port}, {self.security})"

    async def send(self, message: EmailMessage) -> None:
        """Send `message` to its To, Cc and Bcc recipients (Bcc is not transmitted)."""
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
        )
        try:
            # Connecting does TLS; logging in inside the block means that a refused login
            # still ends with QUIT and an orderly TLS close, not a dropped connection.
            async with client:
                if self.username is not None:
                    await client.login(self.username, self.password or "")
                refused, _reply = await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            # Every recipient refused: permanent if the server said 5xx for all of them.
            codes = [refusal.code for refusal in error.recipients]
            raise DeliveryError(
                f"{self!r}: recipients refused: {_describe(error)}",
                permanent=all(500 <= code < 600 for code in codes),
            ) from error
        except aiosmtplib.SMTPDataError as error:
            # The content itself was rejected (size, policy): a retry sends the same bytes.
            raise DeliveryError(
                f"{self!r}: message refused: {_describe(error)}",
                permanent=500 <= error.code < 600,
            ) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            # Connection, TLS, authentication or a transient reply: worth trying again.
            raise DeliveryError(f"{self!r}: {_describe(error)}") from error
        finally:
            # A connect that failed half-way (TLS refused, no STARTTLS) never entered the
            # block: close what it opened, or the socket lingers until garbage collection.
            client.close()
        if refused:
            # Some recipients took it; retrying would send them a second copy, so the mail
            # counts as delivered and the refusals are only logged.
            log.warning(
                "mail %s refused by some recipients: %s",
                message["Message-ID"],
                {address: str(response) for address, response in refused.items()},
            )


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text}"


class EmlDirectoryTransport:
    """Delivery into a directory as .eml files (the development default)."""

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.directory = directory
        self.clock = clock

    def __repr__(self) -> str:
        return f"EmlDirectoryTransport({str(self.directory)!r})"

    async def send(self, message: EmailMessage) -> None:
        """Write `message` as one new .eml file."""
        try:
            path = await asyncio.to_thread(write_eml, self.directory, message, self.clock())
        except OSError as error:
            raise DeliveryError(f"{self!r}: {_describe(error)}") from error
        log.info("mail %s written to %s", message["Message-ID"], path)


def transport_from_settings(settings: Settings) -> MailTransport:
    """SMTP when smtp_host is set; otherwise .eml files in settings.mail_dir."""
    if not settings.smtp_host:
        return EmlDirectoryTransport(settings.mail_dir)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=password,
    )
