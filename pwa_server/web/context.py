"""What every handler gets from the application: the process's services and the renderer.

Starlette's `app.state` is untyped; `create_app` puts one AppContext there and handlers read
it through `app_context(request)`, so that the name and the type are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request

from pwa_server.runtime import Services
from pwa_server.web.rendering import Renderer


@dataclass(frozen=True)
class AppContext:
    """The application's services (one set per worker process) and its page renderer."""

    services: Services
    renderer: Renderer


def install_context(app: Starlette, context: AppContext) -> None:
    """Make `context` what `app_context` returns for the requests of `app`."""
    app.state.context = context


def app_context(request: Request) -> AppContext:
    """The context of the application serving `request`."""
    context: AppContext = request.app.state.context
    return context
