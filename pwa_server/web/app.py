"""The composition root of the web application: routes, middleware and error handling."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from pwa_server.runtime import Services
from pwa_server.web import pki_routes
from pwa_server.web.errors import http_exception, server_error
from pwa_server.web.health import healthz
from pwa_server.web.pages import home
from pwa_server.web.proxy_tls import TrustedProxyTlsMiddleware
from pwa_server.web.security_headers import SecurityHeadersMiddleware

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def create_app(services: Services) -> Starlette:
    """The ASGI application over already opened services (one set per worker process)."""
    app = Starlette(
        routes=[
            Route("/", home, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            *pki_routes.routes,
            Mount("/static", StaticFiles(directory=FRONTEND / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(TrustedProxyTlsMiddleware, trusted=services.settings.trusted_proxies),
        ],
        exception_handlers={404: http_exception, 405: http_exception, 500: server_error},
    )
    app.state.services = services
    app.state.templates = Jinja2Templates(directory=FRONTEND / "templates")
    return app
