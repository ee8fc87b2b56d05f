"""Composing mails, and keeping them as text in the outbox.

A mail is composed once, when the domain change that causes it happens, and stored whole in
the outbox; the sender only parses it back. Bodies use a 7-bit transfer encoding (base64 or
quoted-printable for Japanese text), so the stored text is plain ASCII and any SMTP relay
accepts it, with or without 8BITMIME.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage

# How messages are built: RFC 5322 headers (non-ASCII ones RFC 2047-encoded) and 7-bit bodies.
COMPOSE_POLICY = email.policy.default.clone(cte_type="7bit")

# How messages are written into the outbox and parsed back: LF line ends, UTF-8 safe, so that
# `parse_stored(to_stored(m))` gives the same headers and body.
STORE_POLICY = email.policy.default


def compose(
    *,
    sender: str | Address,
    to: str | Address | Sequence[str | Address],
    subject: str,
    text: str,
    html: str | None = None,
    message_id_domain: str,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """A UTF-8 mail with Date and Message-ID; `html`, when given, is an alternative part.

    Addresses are RFC 5322 strings or `Address` objects; use `Address(name, addr_spec=...)`
    for names that come from users, which are then quoted as needed (a comma in a name
    would otherwise split it into two recipients). Raises ValueError for an address that is
    not one, or a header value with a line break (which would let a user inject headers).
    """
    # str(Address) is its quoted, parseable form, so strings and Addresses mix safely.
    to_list = [str(to)] if isinstance(to, str | Address) else [str(item) for item in to]
    message = EmailMessage(policy=COMPOSE_POLICY)
    message["From"] = str(sender)
    message["To"] = ", ".join(to_list)
    message["Subject"] = subject
    moment = date if date is not None else dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where UTC was expected")
    message["Date"] = email.utils.format_datetime(moment)
    message["Message-ID"] = email.utils.make_msgid(domain=message_id_domain)
    _check_addresses(message, "From")
    _check_addresses(message, "To")
    if not addresses(message, "To"):
        raise ValueError("a mail needs at least one recipient")
    message.set_content(text, charset="utf-8")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8")
        # add_alternative builds the parts as whole messages, each with its own MIME-Version;
        # RFC 2045 wants it once, at the top.
        for part in message.iter_parts():
            del part["MIME-Version"]
    return message


def _check_addresses(message: EmailMessage, header: str) -> None:
    # The header parser is lenient: it records defects instead of raising, so check here that
    # every entry is a complete address before the mail reaches the outbox.
    for address in addresses(message, header):
        if not address.username or not address.domain:
            raise ValueError(f"{header}: {address.addr_spec!r} is not a mail address")
    if getattr(message[header], "defects", None):
        raise ValueError(f"{header}: {message[header]!r} is not a valid address list")


def addresses(message: EmailMessage, header: str) -> list[Address]:
    """The addresses in an address header (From, To, Cc, Bcc); empty when it is absent."""
    value = message[header]
    if value is None:
        return []
    found: tuple[Address, ...] = getattr(value, "addresses", ())
    return list(found)


def recipients(message: EmailMessage) -> list[str]:
    """Every envelope recipient (To, Cc and Bcc), as bare addresses."""
    return [
        address.addr_spec
        for header in ("To", "Cc", "Bcc")
        for address in addresses(message, header)
    ]


def sender_domain(mail_from: str) -> str:
    """The domain of a From address such as "Shomei <no-reply@example.jp>", for Message-IDs."""
    _name, address = email.utils.parseaddr(mail_from)
    _local, at, domain = address.rpartition("@")
    if not at or not domain:
        raise ValueError(f"{mail_from!r} has no domain")
    return domain


def to_stored(message: EmailMessage) -> str:
    """The whole message as RFC 5322 text, for the outbox's body column."""
    return message.as_string(policy=STORE_POLICY)


def parse_stored(body: str) -> EmailMessage:
    """The message `to_stored` wrote."""
    parsed = email.message_from_string(body, policy=STORE_POLICY)
    if not isinstance(parsed, EmailMessage):  # the default policy always gives one
        raise TypeError("stored mail did not parse into an EmailMessage")
    return parsed
