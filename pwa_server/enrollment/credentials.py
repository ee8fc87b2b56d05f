"""The secrets of an enrollment: how they are made and normalised (hashing.py stores them)."""

from __future__ import annotations

import secrets
import unicodedata

# Lower-case letters and digits without 0/o, 1/l/i: nothing a person can misread on a phone.
UNAMBIGUOUS = "23456789abcdefghjkmnpqrstuvwxyz"
# 13 characters from 31 give 64.4 bits: above the 60 bits the PKCS#12 encryption relies on.
DOWNLOAD_PASSWORD_LENGTH = 13
ONE_TIME_PASSWORD_DIGITS = 8
CERTIFICATE_USER_ID_PREFIX = "shm-"
CERTIFICATE_USER_ID_LENGTH = 8


def new_one_time_password() -> str:
    """Eight digits: typed on a phone's number pad; the lockout bounds guessing."""
    return "".join(secrets.choice("0123456789") for _ in range(ONE_TIME_PASSWORD_DIGITS))


def new_download_password() -> str:
    """The download password, also the PKCS#12 password the phone asks for at install."""
    return "".join(secrets.choice(UNAMBIGUOUS) for _ in range(DOWNLOAD_PASSWORD_LENGTH))


def new_certificate_user_id() -> str:
    """The certificate's CN: ours, never the site's user id (seed 003)."""
    suffix = "".join(secrets.choice(UNAMBIGUOUS) for _ in range(CERTIFICATE_USER_ID_LENGTH))
    return CERTIFICATE_USER_ID_PREFIX + suffix


def grouped(secret: str, size: int = 4) -> list[str]:
    """The secret in groups of `size`, for reading and typing on a phone."""
    return [secret[i : i + size] for i in range(0, len(secret), size)]


def normalise_typed(value: str) -> str:
    """What a person typed for a generated secret: spaces and hyphens out, lower case."""
    return "".join(
        ch for ch in unicodedata.normalize("NFKC", value) if ch not in " -\u3000"
    ).lower()


def normalise_identifier(value: str) -> str:
    """A typed certificate user ID: NFKC, spaces out, lower case (its hyphen stays)."""
    return "".join(unicodedata.normalize("NFKC", value).split()).lower()


def normalise_answer(answer: str) -> str:
    """A secret answer compared as people mean it: NFKC, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", answer).casefold().split())
