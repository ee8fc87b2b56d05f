"""A TLS context that asks for a client certificate and lets the application judge it.

The installation check must answer "unknown", "expired" or "revoked" with a page, never with a
failed handshake. Python's ssl module can only make OpenSSL verify a client certificate against
loaded CAs (a foreign or expired one then aborts the handshake), or not ask for one at all;
nginx calls the missing mode `ssl_verify_client optional_no_ca`. No library offers it for
Python's ssl, so this sets OpenSSL's verify callback to "accept" through ctypes, on the SSL_CTX
that CPython's SSLContext wraps. A guard checks that the pointer really is that SSL_CTX.
"""

from __future__ import annotations

import ctypes
import ssl
from pathlib import Path

from pwa_server.serve.tls_profile import LIBSSL, TlsContextError, server_context, ssl_ctx_pointer

_SSL_VERIFY_PEER = 0x01
_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept(preverify_ok: int, store: int | None) -> int:
    # Every certificate is let through; the application decides (pwa_server/enrollment).
    return 1


_ACCEPT = _VerifyCallback(_accept)
LIBSSL.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VerifyCallback]
LIBSSL.SSL_CTX_set_verify.restype = None


def client_certificate_context(
    certificate_chain: Path, private_key: Path, client_ca_bundle: Path
) -> ssl.SSLContext:
    """Server context: requests a client certificate, accepts any (or none) at the TLS layer.

    The client CA bundle is still loaded so that the server names our CAs in its certificate
    request, which lets browsers offer the right certificate first.
    """
    context = server_context(certificate_chain, private_key)
    context.load_verify_locations(cafile=str(client_ca_bundle))
    context.verify_mode = ssl.CERT_NONE
    LIBSSL.SSL_CTX_set_verify(ssl_ctx_pointer(context), _SSL_VERIFY_PEER, _ACCEPT)
    # Read back through the ssl module: proves the pointer was the context's own SSL_CTX.
    if context.verify_mode != ssl.CERT_OPTIONAL:
        raise TlsContextError("could not set the client-certificate verify callback")
    return context
