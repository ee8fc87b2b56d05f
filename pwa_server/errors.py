"""The one root of Shomei's own errors, and the kinds of failure a caller can tell apart.

Every error the domain raises subclasses `ShomeiError` and states its `kind` once, as a class
attribute. The kind says what went wrong, not how to show it: the web layer turns a kind into
an HTTP status in one table, and the CLI prints any of them as one line.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """What kind of failure an error is, in words a caller can act on."""

    NOT_FOUND = "not-found"
    """No such thing (or not one the caller may see)."""
    CONFLICT = "conflict"
    """The thing's current state does not allow this; another step may."""
    GONE = "gone"
    """It was there and will not be again (expired, cancelled, used up)."""
    LOCKED = "locked"
    """Locked after too many wrong attempts, until someone unlocks it."""
    INVALID = "invalid"
    """Input that is well-formed but cannot be accepted."""
    UNAUTHENTICATED = "unauthenticated"
    """The caller did not prove who they are (no or a wrong credential)."""
    REFUSED = "refused"
    """The caller is known, or need not be, and the answer is no."""
    RATE_LIMITED = "rate-limited"
    """Too much at once: the same request may succeed a little later."""
    UNAVAILABLE = "unavailable"
    """Something we depend on (token, database, CA, mail server) cannot do it now."""
    FAILED = "failed"
    """We tried and it failed on our side; trying the same again will not help."""


class ShomeiError(Exception):
    """Root of every error Shomei's own code raises (hsm has its own root, HsmError)."""

    kind: ClassVar[ErrorKind]
