"""How secrets are stored and checked, by who made them.

Generated secrets (the one-time password, the download password) carry their strength in
their randomness: they are stored as HMAC-SHA256 under a key that never leaves the token,
`hmac-sha256$<key label>$<salt hex>$<mac hex>`, so a copy of the database allows no offline
guessing and a check costs microseconds. Secrets people choose (secret answers) are stored as
Argon2id, whose cost (64 MiB, ~200 ms of CPU) is what protects them; hashes stored as
Argon2id before keyed hashes existed keep verifying.

Argon2id checks are bounded per process (`slots`, sized from memory): beyond them a check
waits briefly, then SecretCheckBusyError says to come back later.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterator
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pwa_server.enrollment.errors import SecretCheckBusyError

KEYED_SCHEME = "hmac-sha256"
ARGON2_PREFIX = "$argon2"
# RFC 9106's second recommended option, argon2-cffi's default: what one check holds.
ARGON2_MEMORY_BYTES = 64 * 1024 * 1024
# Of the machine's memory, the share Argon2id checks of all workers together may hold.
ARGON2_MEMORY_SHARE = 0.25
ARGON2_MAX_SLOTS = 16
_SALT_BYTES = 16


class KeyedHash(Protocol):
    """A keyed hash whose key stays in the token (hsm.TokenHmacKey is one)."""

    @property
    def label(self) -> str: ...

    def digest(self, data: bytes) -> bytes: ...


def argon2_slots_for(workers: int, memory_bytes: int | None = None) -> int:
    """How many Argon2id checks one of `workers` processes may run at once."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    budget = int(memory_bytes * ARGON2_MEMORY_SHARE) // max(workers, 1)
    return max(1, min(ARGON2_MAX_SLOTS, budget // ARGON2_MEMORY_BYTES))


class SecretHashes:
    """Hashes and checks every secret of an enrollment (see the module's docstring)."""

    def __init__(
        self,
        key: KeyedHash,
        *,
        argon2_slots: int,
        argon2_wait: float = 2.0,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.key = key
        self.argon2_slots = argon2_slots
        self._argon2_wait = argon2_wait
        self._slots = threading.BoundedSemaphore(argon2_slots)
        self._hasher = hasher or PasswordHasher()
        # Compared against when there is nothing to compare with (an unknown user ID), so
        # that the answer costs the same work as a wrong secret for an existing one.
        self._dummy = self.keyed(secrets.token_urlsafe(16))

    def keyed(self, value: str) -> str:
        """The stored form of a generated secret: a salted HMAC-SHA256 made in the token."""
        salt = secrets.token_bytes(_SALT_BYTES)
        mac = self._mac(salt, value)
        return f"{KEYED_SCHEME}${self.key.label}${salt.hex()}${mac.hex()}"

    def argon2(self, value: str) -> str:
        """The stored form of a secret a person chose: Argon2id, within the bound."""
        with self._argon2_slot():
            return self._hasher.hash(value)

    def verify(self, stored: str | None, value: str) -> bool:
        """True when `value` matches `stored`, of whichever scheme it names (constant time).

        With nothing stored, the same keyed work is done against a dummy and False returned.
        """
        if not stored:
            self._verify_keyed(self._dummy, value)
            return False
        if stored.startswith(ARGON2_PREFIX):
            return self._verify_argon2(stored, value)
        return self._verify_keyed(stored, value)

    def _verify_keyed(self, stored: str, value: str) -> bool:
        scheme, label, salt_hex, mac_hex = [*stored.split("$"), "", "", ""][:4]
        try:
            salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(mac_hex)
        except ValueError:
            return False
        # Another key's hashes (a token replaced) cannot be checked: never a match.
        known = scheme == KEYED_SCHEME and label == self.key.label
        return hmac.compare_digest(self._mac(salt, value), expected) and known

    def _verify_argon2(self, stored: str, value: str) -> bool:
        with self._argon2_slot():
            try:
                return self._hasher.verify(stored, value)
            except (VerificationError, InvalidHashError):
                return False

    def _mac(self, salt: bytes, value: str) -> bytes:
        return self.key.digest(salt + value.encode("utf-8"))

    @contextlib.contextmanager
    def _argon2_slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._argon2_wait):
            raise SecretCheckBusyError(retry_after=max(1, round(self._argon2_wait)))
        try:
            yield
        finally:
            self._slots.release()
