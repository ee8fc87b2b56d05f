"""The "open this page in Safari" page that iOS browsers other than Safari get before a step
whose result only Safari can use (the profile download, the installation check)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pwa_server.web.context import app_context
from pwa_server.web.user_agent import parse_user_agent

# ?browser=this: the person cannot use Safari (e.g. restricted by Screen Time) and goes on.
STAY = ("browser", "this")


def not_safari_on_ios(request: Request) -> str | None:
    """The name of the iOS browser other than Safari asking, or None."""
    return parse_user_agent(request.headers.get("user-agent", "")).ios_browser_not_safari


def open_in_safari(request: Request) -> Response | None:
    """The page sending an iOS browser other than Safari to Safari with this step's link;
    None for Safari, other phones, and a person who chose to stay."""
    browser = not_safari_on_ios(request)
    if browser is None or request.query_params.get(STAY[0]) == STAY[1]:
        return None
    context = app_context(request)
    link = context.services.settings.effective_public_url + request.url.path
    return context.renderer.page(
        request,
        "open_in_safari.html",
        browser=browser,
        link=link,
        stay=f"{request.url.path}?{STAY[0]}={STAY[1]}",
    )
