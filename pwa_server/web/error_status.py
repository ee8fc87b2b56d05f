"""The one table from a kind of error to its HTTP status, for pages and API problems alike."""

from __future__ import annotations

from hsm import HsmError
from pwa_server.errors import ErrorKind, ShomeiError

# RFC 9110 statuses; INVALID is 422 (the request was understood, its content not accepted),
# not 400, which Starlette and the body limits keep for requests that cannot be parsed.
STATUS: dict[ErrorKind, int] = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.GONE: 410,
    ErrorKind.LOCKED: 423,
    ErrorKind.INVALID: 422,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.REFUSED: 403,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.FAILED: 500,
}


def kind_of(error: ShomeiError | HsmError) -> ErrorKind:
    """The error's kind; a token fault (hsm stays independent of us, so it has no kind of
    its own) is UNAVAILABLE: nothing was changed, and the token may answer again shortly."""
    return ErrorKind.UNAVAILABLE if isinstance(error, HsmError) else error.kind


def status_of(error: ShomeiError | HsmError) -> int:
    """The HTTP status of a domain error or a token fault."""
    return STATUS[kind_of(error)]
