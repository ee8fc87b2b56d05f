"""A generic secret key in the token that computes HMAC-SHA256 (CKM_SHA256_HMAC).

The key is made inside the token, sensitive and never extractable: whoever copies the
database cannot recompute a keyed hash, so secrets hashed with it allow no offline guessing.
"""

from __future__ import annotations

import secrets
from typing import Any

from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from hsm.errors import HsmError, KeyNotFoundError
from hsm.token import Token

HMAC_KEY_BITS = 256

_SECRET_TEMPLATE = {
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.PRIVATE: True,
    Attribute.SIGN: True,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}


class TokenHmacKey:
    """The token's HMAC-SHA256 key named `label`; `digest` runs inside the token."""

    def __init__(self, token: Token, label: str) -> None:
        self._token = token
        self.label = label
        # (login generation, object handle): a new session means looking the handle up again.
        self._handle: tuple[int, Any] | None = None

    def digest(self, data: bytes) -> bytes:
        """HMAC-SHA256 of `data` under the token key (32 bytes)."""

        def sign(session: Any) -> bytes:
            generation = self._token._generation()
            if self._handle is None or self._handle[0] != generation:
                self._handle = (generation, _find(session, self.label))
            mac: bytes = self._handle[1].sign(data, mechanism=Mechanism.SHA256_HMAC)
            return mac

        handle = self._handle
        stale = handle is None or handle[0] != self._token._generation()
        return self._token._call(f"keyed hash with key {self.label!r}", sign, searches=stale)


def ensure_hmac_key(token: Token, label: str) -> tuple[TokenHmacKey, bool]:
    """The HMAC key `label`, generated in the token first if there is none; True if made."""

    def find_or_generate(session: Any) -> bool:
        found = list(
            session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label})
        )
        if len(found) > 1:
            raise HsmError(f"the token holds {len(found)} secret keys labelled {label!r}")
        if found:
            return False
        session.generate_key(
            KeyType.GENERIC_SECRET,
            HMAC_KEY_BITS,
            label=label,
            id=secrets.token_bytes(16),
            store=True,
            template=_SECRET_TEMPLATE,
        )
        return True

    created = token._call(f"finding or generating key {label!r}", find_or_generate, searches=True)
    return TokenHmacKey(token, label), created


def _find(session: Any, label: str) -> Any:
    found = list(
        session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label})
    )
    if len(found) != 1:
        raise KeyNotFoundError(f"expected one secret key labelled {label!r}, found {len(found)}")
    return found[0]
