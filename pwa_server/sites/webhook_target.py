"""Where a webhook delivery connects: the URL's name resolved now, every address checked,
and the connection pinned to a checked address.

A name that resolved to a public address when the site registered it may resolve to
127.0.0.1 or 169.254.169.254 today (or between our check and the connection, DNS
rebinding). So the delivery resolves the name itself, refuses it if any address is not
public, and connects to the address it checked, with the name in Host and in TLS's SNI, so
that the receiver's certificate is still verified for the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from pwa_server.notify.transports import DeliveryError
from pwa_server.sites.urls import public_address

ADDRESS_REFUSED = "address not allowed"


@dataclass(frozen=True)
class Target:
    """What to hand the HTTP client: the URL to connect to, and what says the name."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, object] = field(default_factory=dict)


async def webhook_target(url: str, *, private_addresses: bool) -> Target:
    """The target of a delivery to `url`; DeliveryError if it resolves to an address a
    webhook may not go to (any address at all, with `private_addresses`)."""
    if private_addresses:
        return Target(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as error:
        raise DeliveryError(f"the name does not resolve: {error.strerror or error}") from None
    addresses = [ipaddress.ip_address(entry[4][0]) for entry in found]
    if not addresses or not all(public_address(address) for address in addresses):
        raise DeliveryError(f"{ADDRESS_REFUSED}: the URL names a non-public address")
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path, parts.query, ""))
    extensions: dict[str, object] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Target(pinned, {"host": parts.netloc}, extensions)
