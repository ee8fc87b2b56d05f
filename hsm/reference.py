"""How a key on a token is named: by token label, object label and id, never with a PIN."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import quote


class KeyAlgorithm(enum.StrEnum):
    """Key pair types the token generates for CAs and responders."""

    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_3072 = "rsa-3072"

    @property
    def is_ec(self) -> bool:
        return self in (KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384)


@dataclass(frozen=True)
class KeyRef:
    """A reference to a private key object on a token.

    Safe to store and log: it identifies the key, it does not unlock it.
    """

    token_label: str
    label: str
    key_id: bytes
    algorithm: KeyAlgorithm

    @property
    def uri(self) -> str:
        """The RFC 7512 `pkcs11:` URI of the private key."""
        key_id = "".join(f"%{byte:02x}" for byte in self.key_id)
        return (
            f"pkcs11:token={quote(self.token_label, safe='')};"
            f"object={quote(self.label, safe='')};id={key_id};type=private"
        )
