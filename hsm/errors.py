"""Exceptions of the hsm package.

Callers catch these and never import pkcs11: every PKCS#11 error that leaves this package is
translated here into one of our types, with a message a person can act on.
"""

from __future__ import annotations

import pkcs11.exceptions as p11


class HsmError(Exception):
    """Root of every error raised by the hsm package."""


class ModuleLoadError(HsmError):
    """The PKCS#11 module (shared library) could not be loaded."""


class TokenNotFoundError(HsmError):
    """No token with the configured label is present."""


class PinError(HsmError):
    """The PIN was refused (wrong, locked or expired)."""


class KeyNotFoundError(HsmError):
    """No key object with the given reference exists on the token."""


class TokenUnavailableError(HsmError):
    """The token stopped answering (removed, device error, session lost)."""


class UnsupportedOperationError(HsmError):
    """The operation cannot be done with a key that never leaves the token."""


class TokenInitError(HsmError):
    """A SoftHSM token could not be initialised."""


_UNAVAILABLE = (
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.DeviceMemory,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.GeneralError,
)


def translate(error: p11.PKCS11Error, doing: str) -> HsmError:
    """Return our exception for a PKCS#11 error raised while `doing` something.

    python-pkcs11's exceptions carry no message, so the message names the PKCS#11 error
    and what we were doing when it happened.
    """
    name = type(error).__name__
    if isinstance(error, p11.PinIncorrect):
        return PinError(f"{doing}: the token refused the PIN (wrong PIN)")
    if isinstance(error, p11.PinLocked):
        return PinError(f"{doing}: the token's PIN is locked; the security officer must reset it")
    if isinstance(error, p11.PinExpired | p11.PinInvalid | p11.PinLenRange):
        return PinError(f"{doing}: the token refused the PIN ({name})")
    if isinstance(error, p11.UserPinNotInitialized):
        return PinError(f"{doing}: the token's user PIN was never set")
    if isinstance(error, _UNAVAILABLE):
        return TokenUnavailableError(f"{doing}: the token is not available ({name})")
    if isinstance(error, p11.NoSuchKey | p11.KeyHandleInvalid | p11.ObjectHandleInvalid):
        return KeyNotFoundError(f"{doing}: no such key on the token")
    if isinstance(error, p11.KeyUnextractable | p11.AttributeSensitive):
        return UnsupportedOperationError(
            f"{doing}: the key is sensitive and never leaves the token"
        )
    if isinstance(error, p11.NoSuchToken):
        return TokenNotFoundError(f"{doing}: no such token")
    return HsmError(f"{doing}: PKCS#11 error {name}")
