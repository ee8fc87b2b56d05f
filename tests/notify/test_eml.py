"""The development mailbox: .eml files, private to their owner, and `shomei mail list`."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from pwa_server.notify.eml import list_mails, write_eml
from pwa_server.notify.transports import (
    DeliveryError,
    EmlDirectoryTransport,
    SmtpTransport,
    transport_from_settings,
)
from pwa_server.settings import Settings
from tests.notify.conftest import NOW, SUBJECT, TEXT, japanese_mail


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_mail_becomes_a_private_parseable_eml_file(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "mail"
    transport = EmlDirectoryTransport(directory, clock=lambda: NOW)
    mail = japanese_mail(html="<p>山田 太郎 様</p>")
    asyncio.run(transport.send(mail))
    [path] = directory.iterdir()
    assert path.name.startswith("20250401T090000.000000Z-")
    assert path.suffix == ".eml"
    assert mode(path) == 0o600
    assert mode(directory) == 0o700
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    assert parsed["Subject"] == SUBJECT
    assert parsed["Message-ID"] == mail["Message-ID"]
    plain = parsed.get_body(("plain",))
    assert plain is not None
    assert plain.get_content() == TEXT


def test_list_mails_shows_date_recipient_and_subject_newest_last(tmp_path: Path) -> None:
    later = NOW + dt.timedelta(minutes=5)
    write_eml(tmp_path, japanese_mail("second@example.jp", date=later, subject="二通目"), later)
    write_eml(tmp_path, japanese_mail("first@example.jp"), NOW)
    (tmp_path / "notes.txt").write_text("not a mail")
    summaries = list_mails(tmp_path)
    assert [(summary.to, summary.subject) for summary in summaries] == [
        ("first@example.jp", SUBJECT),
        ("second@example.jp", "二通目"),
    ]
    assert [summary.date for summary in summaries] == [NOW, later]
    assert all((tmp_path / summary.file_name).is_file() for summary in summaries)


def test_the_same_mail_twice_makes_two_files(tmp_path: Path) -> None:
    mail = japanese_mail()
    write_eml(tmp_path, mail, NOW)
    write_eml(tmp_path, mail, NOW)
    assert len(list_mails(tmp_path)) == 2


def test_no_directory_means_no_mails(tmp_path: Path) -> None:
    assert list_mails(tmp_path / "missing") == []


def test_an_unwritable_directory_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "mail"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(DeliveryError, match="EmlDirectoryTransport"):
        asyncio.run(EmlDirectoryTransport(blocker).send(japanese_mail()))


def test_no_smtp_host_means_eml_files_in_the_data_directory(tmp_path: Path) -> None:
    transport = transport_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(transport, EmlDirectoryTransport)
    assert transport.directory == tmp_path / "mail"


def test_an_smtp_host_means_smtp(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        smtp_host="mail.example.jp",
        smtp_port=465,
        smtp_security="tls",
        smtp_username="relay",
        smtp_password=SecretStr("s3cret"),
    )
    transport = transport_from_settings(settings)
    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port, transport.security) == ("mail.example.jp", 465, "tls")
    assert (transport.username, transport.password) == ("relay", "s3cret")
    assert "s3cret" not in repr(transport)
