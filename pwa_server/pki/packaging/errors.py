"""The packaging package's own exception."""

from pwa_server.errors import ErrorKind, ShomeiError


class PackagingError(ShomeiError):
    """A packaging resource (such as the profile-signing identity) is missing or unusable.

    The message names the file and what is wrong with it, for an operator to fix.
    """

    kind = ErrorKind.UNAVAILABLE
