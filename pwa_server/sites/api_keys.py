"""API keys: `shk_<id>_<secret>`, the id public (it finds the row), the secret random.

The secret has 256 bits of entropy, so a SHA-256 hash stored in the database is enough to
make a stolen table useless, and checking a key costs microseconds instead of the ~130 ms
of Argon2id, which exists for secrets people choose or type.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_PREFIX = "shk_"
_FORMAT = re.compile(r"shk_([a-z0-9]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: `text` is shown once and never stored."""

    key_id: str
    text: str
    secret_sha256: str


def new_api_key() -> NewApiKey:
    """A fresh key with its hash."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    secret = secrets.token_urlsafe(32)
    return NewApiKey(key_id, f"{_PREFIX}{key_id}_{secret}", secret_hash(secret))


def secret_hash(secret: str) -> str:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_api_key(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    match = _FORMAT.fullmatch(text.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_sha256: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(secret_hash(secret), stored_sha256)
