"""The landing page: what this service is and the root CA to compare before trusting it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from pwa_server.pki.authority import fingerprint
from pwa_server.runtime import Services


def grouped(hex_digits: str) -> str:
    """A fingerprint in groups of eight upper-case digits, as seed 001 shows thumbprints."""
    upper = hex_digits.upper()
    return " ".join(upper[i : i + 8] for i in range(0, len(upper), 8))


async def home(request: Request) -> Response:
    services: Services = request.app.state.services
    root = services.root.certificate
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "root_name": root.subject.rfc4514_string(),
            "root_fingerprint": grouped(fingerprint(root)),
        },
        headers={"cache-control": "no-store"},
    )
