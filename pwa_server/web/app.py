"""The composition root of the web application: routes, middleware and error handling."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hsm import HsmError
from pwa_server.errors import ShomeiError
from pwa_server.frontend import STATIC_DIR
from pwa_server.runtime import Services
from pwa_server.web import check_routes, enroll_routes, pki_routes
from pwa_server.web.api.routes import api_routes
from pwa_server.web.context import AppContext, install_context
from pwa_server.web.errors import (
    domain_error,
    hsm_unavailable,
    http_exception,
    server_error,
    sign_in_required,
)
from pwa_server.web.health import healthz
from pwa_server.web.middleware.body_limit import BodyLimitMiddleware
from pwa_server.web.middleware.check_listener import CheckOnlyMiddleware
from pwa_server.web.middleware.client_rate_limit import ClientRateLimitMiddleware
from pwa_server.web.middleware.plain_http import PlainHttpPkiOnlyMiddleware
from pwa_server.web.middleware.proxy_tls import TrustedProxyTlsMiddleware
from pwa_server.web.middleware.recent_ocsp import RecentOcspResponsesMiddleware
from pwa_server.web.middleware.security_headers import SecurityHeadersMiddleware
from pwa_server.web.officer import auth_routes, ceremony_pages, enrollment_pages, site_pages
from pwa_server.web.officer import pages as officer_pages
from pwa_server.web.officer.guard import SignInRequiredError
from pwa_server.web.pages import home, operator_logo
from pwa_server.web.rendering import LOGO_PATH, Operator, Renderer

# Short: a session only carries one enrollment step and a CSRF token.
SESSION_MAX_AGE = 30 * 60


async def service_worker(request: Request) -> Response:
    """The service worker, from the root so that its scope is the whole site."""
    return FileResponse(
        STATIC_DIR / "sw.js",
        media_type="text/javascript",
        headers={"cache-control": "no-cache"},
    )


def create_app(services: Services) -> Starlette:
    """The ASGI application over already opened services (one set per worker process)."""
    session_key = services.settings.session_key_file.read_text(encoding="utf-8").strip()
    app = Starlette(
        routes=[
            Route("/", home, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route(LOGO_PATH, operator_logo, methods=["GET", "HEAD"]),
            *enroll_routes.routes,
            *check_routes.routes,
            *pki_routes.routes,
            *api_routes(services),
            *auth_routes.routes,
            *officer_pages.routes,
            *enrollment_pages.routes,
            *ceremony_pages.routes,
            *site_pages.routes,
            Route("/sw.js", service_worker, methods=["GET", "HEAD"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            # Second, so that its answers carry the security headers and pass nothing else.
            Middleware(RecentOcspResponsesMiddleware, responders=services.ocsp, clock=services.now),
            Middleware(PlainHttpPkiOnlyMiddleware),
            Middleware(TrustedProxyTlsMiddleware, trusted=services.settings.trusted_proxies),
            Middleware(
                SessionMiddleware,
                secret_key=session_key,
                session_cookie="__Host-session",
                max_age=SESSION_MAX_AGE,
                same_site="strict",
                https_only=True,
            ),
            # These last three answer with pages in the visitor's language, with a session.
            Middleware(CheckOnlyMiddleware, home=services.settings.effective_public_url + "/"),
            Middleware(ClientRateLimitMiddleware, services=services),
            Middleware(BodyLimitMiddleware),
        ],
        exception_handlers={
            ShomeiError: domain_error,
            HsmError: hsm_unavailable,
            SignInRequiredError: sign_in_required,
            404: http_exception,
            403: http_exception,
            405: http_exception,
            500: server_error,
        },
    )
    renderer = Renderer(
        zone=services.settings.zone, operator=Operator.from_settings(services.settings)
    )
    install_context(app, AppContext(services=services, renderer=renderer))
    return app
