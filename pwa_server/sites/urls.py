"""Which URLs a site may register: where people are sent back, and where webhooks go."""

from __future__ import annotations

import ipaddress
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


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a webhook may be sent to `address`: not loopback, link-local (cloud metadata
    services live there), private, unspecified, multicast or reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


def checked_webhook_url(url: str, *, private_addresses: bool = False) -> str:
    """`url` as `checked_url` takes it, and not naming this machine or a private network
    (unless `private_addresses`, for development): a webhook is a request the server makes
    wherever the site says, and must not reach what only the server can reach. Names are
    resolved and checked again at each delivery (sites.webhook_target)."""
    checked = checked_url("webhook_url", url)
    if private_addresses:
        return checked
    host = urlsplit(checked).hostname or ""
    refused = InvalidSiteInputError(
        "webhook_url", "must not point at this machine or a private or link-local address"
    )
    if host == "localhost" or host.endswith(".localhost"):
        raise refused
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return checked  # a name: checked when it is resolved, at every delivery
    if not public_address(address):
        raise refused
    return checked


def origin(url: str) -> str:
    """scheme://host[:port] of an already checked URL (for the page's form-action)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
