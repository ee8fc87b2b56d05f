"""Which URLs a site may register: where people are sent back, and where webhooks go."""

from __future__ import annotations

from urllib.parse import urlsplit

from pwa_server.sites.errors import InvalidSiteInputError

# Plain HTTP only to this machine (development and tests); anywhere else a return URL or a
# webhook would carry an assertion or a signed event in the clear.
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
MAX_URL_LENGTH = 2048


def checked_url(field: str, url: str) -> str:
    """`url` if it is an absolute https URL (or http to loopback) without credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidSiteInputError(field, f"at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidSiteInputError(field, f"not a URL: {error}") from None
    del port  # parsed only to reject a malformed port
    if not parts.hostname:
        raise InvalidSiteInputError(field, "an absolute URL is needed")
    if parts.username or parts.password:
        raise InvalidSiteInputError(field, "a URL may not carry a user name or password")
    if parts.fragment:
        raise InvalidSiteInputError(field, "a URL may not carry a #fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return url
    raise InvalidSiteInputError(field, "must be https (http only to localhost)")


def origin(url: str) -> str:
    """scheme://host[:port] of an already checked URL (for the page's form-action)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
