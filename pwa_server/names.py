"""One rule for the names and identifiers that people, officers and sites give us, whether
through the CLI, the API or the console.

A name (a display name, an officer's name, a key's label) may be in any script, Japanese
first among them, but holds no control character (line breaks, terminal escapes), no
invisible formatting character (bidi overrides such as U+202E, which reorder what an officer
reads; zero-width characters), nothing private-use, unassigned or a lone surrogate; its
spaces are trimmed and their runs become one space. An identifier (a site's user id) is
visible ASCII only: what a relying site uses as a key is never a look-alike of another
(Latin "a", U+0061, and Cyrillic "a", U+0430, look the same on every screen)."""

from __future__ import annotations

import re
import unicodedata

from pwa_server.errors import ErrorKind, ShomeiError

MAX_NAME_LENGTH = 255
MAX_IDENTIFIER_LENGTH = 255
# Cc control, Cf format (bidi controls, zero-width), Co private use, Cs surrogate, Cn unassigned.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn"}
_IDENTIFIER = re.compile(r"[!-~]+")


class InvalidNameError(ShomeiError, ValueError):
    """The text is not a name or identifier we accept; the message says why, in English."""

    kind = ErrorKind.INVALID


def checked_name(value: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """`value` as a name: NFC, whitespace collapsed; InvalidNameError if it is empty, too
    long or holds a character the module's rule refuses."""
    if len(value) > 4 * max_length:
        raise InvalidNameError(f"at most {max_length} characters")
    for character in value:
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            raise InvalidNameError(
                f"may not contain control or invisible characters (U+{ord(character):04X})"
            )
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text:
        raise InvalidNameError("required")
    if len(text) > max_length:
        raise InvalidNameError(f"at most {max_length} characters")
    return text


def checked_identifier(value: str, *, max_length: int = MAX_IDENTIFIER_LENGTH) -> str:
    """`value` as an identifier: 1 to `max_length` visible ASCII characters, no spaces."""
    if not value:
        raise InvalidNameError("required")
    if len(value) > max_length:
        raise InvalidNameError(f"at most {max_length} characters")
    if not _IDENTIFIER.fullmatch(value):
        raise InvalidNameError("visible ASCII characters only, without spaces")
    return value


def for_terminal(text: str) -> str:
    """`text` safe to print on a terminal: every character the rule refuses (stored before
    it existed) shown as an escape instead of acting on the terminal."""
    return "".join(
        f"\\u{ord(character):04x}"
        if unicodedata.category(character) in _REFUSED_CATEGORIES
        else character
        for character in text
    )


# A recipient we accept: a dot-atom local part (RFC 5322) at a host name. Narrower than the
# RFC (no quoted local parts, no address literals, ASCII only) so that every address that
# passes is one the mail header parser and any SMTP relay take as it is.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
MAIL_ADDRESS_PATTERN = rf"^{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})*$"
_MAIL_ADDRESS = re.compile(MAIL_ADDRESS_PATTERN)


def is_mail_address(text: str) -> bool:
    """True if `text` is a recipient address we accept (see MAIL_ADDRESS_PATTERN)."""
    return len(text) <= 320 and _MAIL_ADDRESS.fullmatch(text) is not None
