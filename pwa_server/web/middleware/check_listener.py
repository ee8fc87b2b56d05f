"""The check listener serves the installation check and nothing else.

It asks every browser for a client certificate and accepts any, so that the check can judge
it: the enrollment pages, the console and the API have no business there (a console behind a
port that takes any certificate is one more way in to defend). The listener's server marks
its requests (`CheckListener`), and the application refuses everything else they ask for.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pwa_server.i18n import N_
from pwa_server.web.asgi import ASGIApp, Receive, Scope, Send
from pwa_server.web.errors import error_response

LISTENER = "shomei.listener"
# The check page and what it is made of; /healthz for monitoring the listener.
_SERVED = ("/check", "/static/", "/healthz", "/sw.js")


class CheckListener:
    """Wraps the application for the check listener's server: marks its requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, LISTENER: "check"}, receive, send)


class CheckOnlyMiddleware:
    """On the check listener: the check, its assets and /healthz; "/" goes to the PWA's home
    (the page's brand link); anything else is not found."""

    def __init__(self, app: ASGIApp, *, home: str) -> None:
        self.app = app
        self.home = home

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(LISTENER) != "check" or scope["path"].startswith(_SERVED):
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["path"] == "/":
            response = RedirectResponse(self.home, status_code=303)
        else:
            response = error_response(
                Request(scope, receive),
                404,
                N_("Page not found"),
                N_("This address only checks the certificate on your device."),
            )
        await response(scope, receive, send)
