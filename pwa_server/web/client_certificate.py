"""The client certificate, read from the one place it is given: the ASGI TLS extension."""

from __future__ import annotations

from cryptography import x509
from starlette.requests import Request


def client_certificate(request: Request) -> x509.Certificate | None:
    """The presented client certificate (uvicorn or a trusted proxy put it there), or None."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    try:
        return x509.load_pem_x509_certificate(chain[0].encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
