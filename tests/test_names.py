"""One rule for names and identifiers, shared by the CLI, the API and the console."""

from __future__ import annotations

import pytest

from pwa_server.names import InvalidNameError, checked_identifier, checked_name, for_terminal


@pytest.mark.parametrize(
    "name",
    [
        "evil\nsecond line",
        "red\x1b[31m",
        "title\x1b]0;pwned\x07",
        "admin\u202egnp.exe",
        "zero\u200bwidth",
        "private\ue000use",
        "x" * 256,
        "   ",
    ],
    ids=["newline", "csi", "osc", "rtl-override", "zero-width", "private-use", "long", "blank"],
)
def test_a_name_with_control_or_invisible_characters_or_too_long_is_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        checked_name(name)


def test_a_japanese_name_is_accepted_with_its_spaces_collapsed() -> None:
    assert checked_name("  山田\u3000 太郎 ") == "山田 太郎"


@pytest.mark.parametrize(
    "identifier",
    ["\u0430lice", "alice bob", "alice\u202e", "\uff41\uff4c\uff49\uff43\uff45", "", "u" * 256],
    ids=["cyrillic-a", "space", "rtl-override", "fullwidth", "empty", "long"],
)
def test_an_identifier_that_is_not_visible_ascii_is_refused(identifier: str) -> None:
    with pytest.raises(InvalidNameError):
        checked_identifier(identifier)


def test_an_ascii_identifier_is_accepted_as_given() -> None:
    assert checked_identifier("u-1042@shop.example") == "u-1042@shop.example"


def test_text_stored_before_the_rule_is_printed_with_escapes_instead_of_acting() -> None:
    assert for_terminal("Aiko\x1b[2J\u202e") == "Aiko\\u001b[2J\\u202e"
