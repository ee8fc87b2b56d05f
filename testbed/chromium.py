"""Debian's Chromium, headless, trusting exactly one Shomei instance's TLS key: what the
browser tests and bench/page_weight.py launch.

The server's TLS certificate is issued by our own CA. Chromium trusts it through
`--ignore-certificate-errors-spki-list` with the SHA-256 of the server's public key, so
contexts keep `ignore_https_errors=False` and a certificate for any other key still fails.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, Playwright

from testbed.serving import ShomeiServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def spki_sha256(certificate_pem: Path) -> str:
    """Base64 SHA-256 of the first certificate's SubjectPublicKeyInfo, as Chromium wants it."""
    certificate = x509.load_pem_x509_certificates(certificate_pem.read_bytes())[0]
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def pinned_chromium(playwright: Playwright, server: ShomeiServer) -> Browser:
    """Debian's Chromium, headless, trusting exactly `server`'s TLS key."""
    pin = spki_sha256(server.settings.tls_dir / "server.pem")
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"],
    )
