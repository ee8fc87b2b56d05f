"""Every TLS listener follows Mozilla's "intermediate" server profile (guidelines 5.7):
TLS 1.2 and 1.3 only; in TLS 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (no CBC, no
static RSA); key exchange over X25519, P-256 or P-384 only (no X448, no P-521). TLS 1.3's
suites are OpenSSL's defaults, which are the profile's three. The profile's DHE suites need
DH parameters we do not configure, so they are left out.

Python's ssl module cannot restrict the key-exchange groups (`set_ecdh_curve` keeps one
curve, and drops X25519), so the group list is set with OpenSSL's own SSL_CTX_ctrl through
ctypes on the SSL_CTX that CPython's SSLContext wraps, as client_auth_context sets its
verify callback.
"""

from __future__ import annotations

import _ssl
import ctypes
import ssl
from pathlib import Path

TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
GROUPS = "X25519:P-256:P-384"
# openssl/ssl.h: SSL_CTX_set1_groups_list(ctx, list) is SSL_CTX_ctrl(ctx, 92, 0, list).
_SSL_CTRL_SET_GROUPS_LIST = 92

# dlsym on the _ssl extension also finds the symbols of the libssl it is linked against.
LIBSSL = ctypes.CDLL(_ssl.__file__)
LIBSSL.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
LIBSSL.SSL_CTX_ctrl.restype = ctypes.c_long


class TlsContextError(RuntimeError):
    """This Python's ssl module is not laid out as expected; the listeners cannot start."""


def ssl_ctx_pointer(context: ssl.SSLContext) -> int:
    """The SSL_CTX * of `context`."""
    # CPython's PySSLContext starts with PyObject_HEAD followed by `SSL_CTX *ctx`.
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer:
        raise TlsContextError("no SSL_CTX found in the SSLContext")
    return pointer


def server_context(certificate_chain: Path, private_key: Path) -> ssl.SSLContext:
    """A server context with our TLS identity, restricted to the intermediate profile."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(certificate_chain, private_key)
    context.set_alpn_protocols(["http/1.1"])
    if (
        LIBSSL.SSL_CTX_ctrl(ssl_ctx_pointer(context), _SSL_CTRL_SET_GROUPS_LIST, 0, GROUPS.encode())
        != 1
    ):
        raise TlsContextError(f"OpenSSL refused the key-exchange groups {GROUPS}")
    return context
