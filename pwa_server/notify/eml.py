"""Mails as .eml files in a directory: the development mailbox, and `shomei mail list`.

Mails carry enrollment links, so the directory is private to the service user (0700) and
each file is written whole (temporary file, then rename) with mode 0600: a reader never
sees half a message, and nothing else on the machine can read one.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import os
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

SUFFIX = ".eml"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class MailSummary:
    """One stored mail, as `shomei mail list` shows it."""

    date: dt.datetime
    to: str
    subject: str
    file_name: str


def eml_name(message: EmailMessage, moment: dt.datetime) -> str:
    """`<UTC timestamp>-<Message-ID, made safe>.eml`: names sort in the order written."""
    stamp = moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    message_id = str(message["Message-ID"] or "").strip("<> ")
    # A random tail keeps names unique for mails without a Message-ID, or sent twice.
    safe = _UNSAFE.sub("_", message_id)[:64].strip("._") or "mail"
    return f"{stamp}-{safe}-{secrets.token_hex(3)}{SUFFIX}"


def write_eml(directory: Path, message: EmailMessage, moment: dt.datetime) -> Path:
    """Write `message` into `directory` atomically, readable by its owner only."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = directory / eml_name(message, moment)
    temporary = directory / f".{final.name}.tmp"
    content = message.as_bytes(policy=email.policy.default)
    # O_EXCL with 0600 from the start: the file is never readable by others, not even briefly.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


def list_mails(directory: Path) -> list[MailSummary]:
    """The .eml files in `directory` (none if it does not exist), newest last."""
    if not directory.is_dir():
        return []
    summaries = [_summary(path) for path in directory.iterdir() if _is_mail(path)]
    return sorted(summaries, key=lambda summary: (summary.date, summary.file_name))


def _is_mail(path: Path) -> bool:
    return path.suffix == SUFFIX and not path.name.startswith(".") and path.is_file()


def _summary(path: Path) -> MailSummary:
    # Headers only: listing stays fast however large the bodies are.
    with path.open("rb") as handle:
        headers = BytesHeaderParser(policy=email.policy.default).parse(handle)
    return MailSummary(
        date=_date(headers["Date"], path),
        to=str(headers["To"] or ""),
        subject=str(headers["Subject"] or ""),
        file_name=path.name,
    )


def _date(value: object, path: Path) -> dt.datetime:
    """The Date header in UTC; the file's time when the header is missing or unreadable."""
    moment = getattr(value, "datetime", None)
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:  # "-0000" means UTC of unknown origin (RFC 5322 3.3)
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
