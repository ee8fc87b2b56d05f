"""Composing mails and storing them as text: Japanese headers and bodies survive intact."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.headerregistry import Address

import pytest

from pwa_server.notify.mail import compose, parse_stored, recipients, sender_domain, to_stored
from tests.notify.conftest import NOW, SUBJECT, TEXT, japanese_mail


def test_compose_sets_the_headers_a_mail_needs() -> None:
    message = japanese_mail()
    assert message["From"].addresses[0].addr_spec == "no-reply@example.jp"
    assert message["From"].addresses[0].display_name == "証明書サービス"
    assert message["To"] == "yamada@example.jp"
    assert message["Subject"] == SUBJECT
    assert message["Date"].datetime == NOW
    assert message["Message-ID"].endswith("@example.jp>")
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == TEXT


def test_every_mail_gets_its_own_message_id() -> None:
    assert japanese_mail()["Message-ID"] != japanese_mail()["Message-ID"]


def test_stored_text_is_ascii_and_parses_back_to_the_same_mail() -> None:
    message = japanese_mail(html="<p>山田 太郎 様</p>")
    stored = to_stored(message)
    # 7-bit only: any relay takes it, with or without 8BITMIME, and any column holds it.
    assert stored.isascii()
    assert "=?utf-8?" in stored  # the subject is RFC 2047-encoded
    parsed = parse_stored(stored)
    assert parsed["Subject"] == SUBJECT
    assert parsed["Message-ID"] == message["Message-ID"]
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content() == TEXT
    assert html.get_content() == "<p>山田 太郎 様</p>\n"
    # A standard parser, not only ours, reads the same thing.
    generic = email.message_from_bytes(stored.encode("ascii"), policy=email.policy.default)
    assert generic["Subject"] == SUBJECT


def test_html_alternative_has_one_mime_version() -> None:
    stored = to_stored(japanese_mail(html="<p>hello</p>"))
    assert stored.count("MIME-Version:") == 1
    assert "multipart/alternative" in stored


def test_recipients_and_several_addresses() -> None:
    message = japanese_mail(to=["山田 <yamada@example.jp>", "sato@example.jp"])
    assert recipients(message) == ["yamada@example.jp", "sato@example.jp"]


def test_names_from_users_are_quoted_not_split() -> None:
    name = '山田, "太郎"'
    message = japanese_mail(to=[Address(name, addr_spec="yamada@example.jp"), "sato@example.jp"])
    parsed = parse_stored(to_stored(message))
    assert [address.display_name for address in parsed["To"].addresses] == [name, ""]
    assert recipients(parsed) == ["yamada@example.jp", "sato@example.jp"]


def test_a_line_break_in_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        Address("evil\r\nBcc: x@example.com", addr_spec="yamada@example.jp")


@pytest.mark.parametrize(
    "to", ["", "yamada", "yamada@example.jp, sato", "<>", "a@b.c\nBcc: evil@example.com"]
)
def test_a_bad_recipient_is_refused(to: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        japanese_mail(to=to)


def test_a_line_break_in_the_subject_cannot_inject_headers() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        japanese_mail(subject="hello\r\nBcc: evil@example.com")


def test_a_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        japanese_mail(date=dt.datetime(2025, 4, 1, 9, 0))


def test_sender_domain() -> None:
    assert sender_domain("Shomei <no-reply@example.jp>") == "example.jp"
    assert sender_domain("no-reply@localhost") == "localhost"
    with pytest.raises(ValueError, match="no domain"):
        sender_domain("Shomei")


def test_compose_without_a_date_uses_now() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    message = compose(
        sender="a@example.jp", to="b@example.jp", subject="s", text="t", message_id_domain="x"
    )
    assert message["Date"].datetime >= before
