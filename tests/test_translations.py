"""Every user-facing text has its Japanese translation, and the catalogue has nothing stale."""

from __future__ import annotations

import datetime as dt
import sys
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from pwa_server.frontend import LOCALES_DIR
from pwa_server.i18n import Templates, negotiate
from tests.conftest import run_tool

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The msgids found in the code and templates, as babel.cfg says where to look."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    result = run_tool(
        sys.executable,
        "-m",
        "babel.messages.frontend",
        "extract",
        "-F",
        "babel.cfg",
        "--no-default-keywords",
        "-k",
        "_",
        "-k",
        "N_",
        "-k",
        "gettext:2",
        "-k",
        "ngettext:2,3",
        "-o",
        pot,
        ".",
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    with pot.open("rb") as handle:
        return {_key(message.id) for message in read_po(handle) if message.id}


def _key(msgid: str | Sequence[str]) -> str:
    """A plural entry's singular and plural together, a plain entry as it is."""
    return msgid if isinstance(msgid, str) else " | ".join(msgid)


def japanese() -> dict[str, str]:
    """msgid → translation ('' when any form is missing)."""
    with (LOCALES_DIR / "ja" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale="ja")
    translated = {}
    for message in catalogue:
        if not message.id:
            continue
        string = message.string or ""  # None, like '', is no translation
        forms = [string] if isinstance(string, str) else list(string)
        translated[_key(message.id)] = "" if not all(forms) else " | ".join(forms)
    return translated


def test_every_text_has_a_japanese_translation(extracted: set[str]) -> None:
    catalogue = japanese()
    missing = sorted(text for text in extracted if not catalogue.get(text))
    assert missing == []


def test_the_japanese_catalogue_has_no_stale_texts(extracted: set[str]) -> None:
    assert sorted(set(japanese()) - extracted) == []


def test_templates_render_in_both_languages() -> None:
    templates = Templates(zone=zoneinfo.ZoneInfo("Asia/Tokyo"))
    expires_at = dt.datetime(2028, 12, 3, 6, 4, tzinfo=dt.UTC)
    japanese_text = templates.render(
        "mail/invitation.txt", "ja", enrollment_url="u", expires_at=expires_at
    )
    english_text = templates.render(
        "mail/invitation.txt", "en", enrollment_url="u", expires_at=expires_at
    )
    assert "ワンタイムパスワード" in japanese_text
    assert "one-time password" in english_text


@pytest.mark.parametrize(
    ("accept_language", "chosen", "expected"),
    [
        (None, None, "ja"),
        ("en-US,en;q=0.9", None, "en"),
        ("fr-FR, en;q=0.5, ja;q=0.8", None, "ja"),
        ("en", "ja", "ja"),
        ("en;q=0", None, "ja"),
        ("de", "xx", "ja"),
    ],
)
def test_language_comes_from_the_choice_then_accept_language(
    accept_language: str | None, chosen: str | None, expected: str
) -> None:
    assert negotiate(accept_language, chosen) == expected
