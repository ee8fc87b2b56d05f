"""Client certificates relayed by a TLS-terminating proxy (nginx), believed only from it.

nginx with `ssl_verify_client optional;` passes `$ssl_client_escaped_cert` as
X-SSL-Client-Cert and `$ssl_client_verify` as X-SSL-Client-Verify. From a configured proxy
address those headers become the ASGI TLS extension, so the application reads client
certificates from one place whoever terminated TLS. From any other address they are dropped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import unquote

from pwa_server.web.asgi import ASGIApp, Receive, Scope, Send

CERT_HEADER = b"x-ssl-client-cert"
VERIFY_HEADER = b"x-ssl-client-verify"
FORWARDED_HEADER = b"x-forwarded-for"
_PROXY_HEADERS = {CERT_HEADER, VERIFY_HEADER}


Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def from_trusted_proxy(scope: Scope, trusted: Networks) -> bool:
    """Whether the connection's peer is one of the trusted proxies."""
    client = scope.get("client")
    if not client or not trusted:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(address in network for network in trusted)


def _forwarded_client(scope: Scope) -> Scope:
    """The scope with the client the trusted proxy names: the last address it appended to
    X-Forwarded-For (earlier ones are whatever the client itself sent)."""
    forwarded = b",".join(value for name, value in scope["headers"] if name == FORWARDED_HEADER)
    hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
    if not hops:
        return scope
    try:
        address = str(ipaddress.ip_address(hops[-1]))
    except ValueError:
        return scope
    return {**scope, "client": (address, 0)}


class TrustedProxyTlsMiddleware:
    """Turns a trusted proxy's client-certificate headers into the ASGI TLS extension, and
    its X-Forwarded-For into the request's client address (what per-client limits, the
    audit trail and the session list see)."""

    def __init__(self, app: ASGIApp, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted: Networks = [ipaddress.ip_network(a, strict=False) for a in trusted]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        proxied = from_trusted_proxy(scope, self.trusted)
        if proxied:
            scope = _forwarded_client(scope)
        if not any(name in _PROXY_HEADERS for name, _ in headers):
            await self.app(scope, receive, send)
            return
        relayed = {name: value for name, value in headers if name in _PROXY_HEADERS}
        scope = {**scope, "headers": [h for h in headers if h[0] not in _PROXY_HEADERS]}
        if proxied:
            pem = unquote(relayed.get(CERT_HEADER, b"").decode("latin-1"))
            verify = relayed.get(VERIFY_HEADER, b"NONE").decode("latin-1")
            scope["extensions"] = {
                **scope.get("extensions", {}),
                "tls": {
                    "server_cert": None,
                    "client_cert_chain": [pem] if pem.strip() else [],
                    "client_cert_name": None,
                    "client_cert_error": None if verify in ("SUCCESS", "NONE") else verify,
                    "tls_version": None,
                    "cipher_suite": None,
                },
            }
        await self.app(scope, receive, send)
