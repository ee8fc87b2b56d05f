"""An uvicorn HTTP protocol that hands the TLS peer certificate to the application.

uvicorn verifies client certificates but never passes them on. This subclass puts the peer
certificate into the ASGI TLS extension (`scope["extensions"]["tls"]`), the one place the
application reads it from. It relies on two uvicorn internals, `connection_made` and the
`app` attribute used for each request; uvicorn is pinned exactly in pyproject.toml and
tests/serve/test_tls_protocol.py checks both the pin and the behaviour.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from pwa_server.serve.bounded_protocol import BoundedH11Protocol
from pwa_server.web.asgi import ASGIApp, Receive, Scope, Send

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any]:
    """The ASGI TLS extension for a connection (ASGI spec, 'TLS Extension')."""
    if ssl_object is None:
        return {}
    chain: list[str] = []
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
    version = ssl_object.version()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version or ""),
        "cipher_suite": None,
    }


class _WithTlsExtension:
    """Adds the connection's TLS extension to every request scope of that connection."""

    def __init__(self, app: ASGIApp, extension: dict[str, Any]) -> None:
        self._app = app
        self._extension = extension

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._extension and scope["type"] in ("http", "websocket"):
            scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": self._extension}}
        await self._app(scope, receive, send)


class ClientCertH11Protocol(BoundedH11Protocol):
    """BoundedH11Protocol that exposes the client certificate through the ASGI TLS extension."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        extension = tls_extension(transport.get_extra_info("ssl_object"))
        if extension:
            self.app = _WithTlsExtension(self.app, extension)
