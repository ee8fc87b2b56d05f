"""The landing page: what this service is, and the root CA to compare before trusting it;
the operator's logo that every page shows."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from pwa_server.pki.authority import fingerprint
from pwa_server.runtime import Services
from pwa_server.settings import LOGO_TYPES
from pwa_server.web.context import app_context


def grouped_fingerprint(hex_digits: str) -> str:
    """A fingerprint in groups of eight upper-case digits, as seed 001 shows thumbprints."""
    upper = hex_digits.upper()
    return " ".join(upper[i : i + 8] for i in range(0, len(upper), 8))


def root_ca_context(services: Services) -> dict[str, Any]:
    """The root CA's name and SHA-256 fingerprint, for people to compare on their phone."""
    root = services.root.certificate
    return {
        "root_name": root.subject.rfc4514_string(),
        "root_fingerprint": grouped_fingerprint(fingerprint(root)),
    }


async def home(request: Request) -> Response:
    services = app_context(request).services
    renderer = app_context(request).renderer
    return renderer.page(request, "home.html", **root_ca_context(services))


async def operator_logo(request: Request) -> Response:
    """The operator's logo file, from our own origin (the CSP loads images from no other)."""
    logo = app_context(request).services.settings.operator_logo
    if logo is None:
        raise HTTPException(404)
    return FileResponse(
        logo,
        media_type=LOGO_TYPES[logo.suffix.lower()],
        headers={"cache-control": "public, max-age=86400"},
    )
