"""PKCS#11 key storage: tokens, key pairs that never leave them, and keys `cryptography` signs with.

Independent of pwa_server; callers never need to import pkcs11.
"""

from hsm.errors import (
    HsmError,
    KeyNotFoundError,
    ModuleLoadError,
    PinError,
    TokenInitError,
    TokenNotFoundError,
    TokenUnavailableError,
    UnsupportedOperationError,
)
from hsm.keys import TokenECPrivateKey, TokenPrivateKey, TokenRSAPrivateKey
from hsm.reference import KeyAlgorithm, KeyRef
from hsm.secret_keys import TokenHmacKey, ensure_hmac_key
from hsm.token import KeyObjectInfo, Token, TokenInfo

__all__ = [
    "HsmError",
    "KeyAlgorithm",
    "KeyNotFoundError",
    "KeyObjectInfo",
    "KeyRef",
    "ModuleLoadError",
    "PinError",
    "Token",
    "TokenECPrivateKey",
    "TokenHmacKey",
    "TokenInfo",
    "TokenInitError",
    "TokenNotFoundError",
    "TokenPrivateKey",
    "TokenRSAPrivateKey",
    "TokenUnavailableError",
    "UnsupportedOperationError",
    "ensure_hmac_key",
]
