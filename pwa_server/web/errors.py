"""Errors become a page a person understands or an RFC 9457 problem document, never a trace.
Domain errors are mapped to HTTP statuses here, and only here."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pwa_server.enrollment.errors import (
    DownloadWindowClosedError,
    EnrollmentCancelledError,
    EnrollmentError,
    EnrollmentExpiredError,
    EnrollmentLockedError,
    EnrollmentNotFoundError,
    TooManyAttemptsAtOnceError,
    WrongStepError,
)
from pwa_server.i18n import N_
from pwa_server.web.rendering import Renderer, gettext

logger = logging.getLogger("shomei.web")

_TITLES = {
    400: N_("Bad request"),
    403: N_("This request was refused"),
    404: N_("Page not found"),
    405: N_("Method not allowed"),
    500: N_("Server error"),
    503: N_("Service unavailable"),
}
_TEXTS = {
    403: N_(
        "The form expired or did not come from this site. Go back, reload the page and try again."
    ),
    500: N_("Something went wrong on our side. Please try again later."),
}

# Enrollment errors: (HTTP status, title, explanation), in English msgids.
_ENROLLMENT_PAGES: dict[type[EnrollmentError], tuple[int, str, str]] = {
    EnrollmentNotFoundError: (
        404,
        N_("This enrollment link is not valid"),
        N_("Check that you opened the whole link from your invitation."),
    ),
    EnrollmentExpiredError: (
        410,
        N_("This enrollment link has expired"),
        N_("Ask the person who invited you to send a new invitation."),
    ),
    EnrollmentLockedError: (
        423,
        N_("This enrollment is locked"),
        N_("Too many wrong entries. Contact the administrator who invited you to unlock it."),
    ),
    EnrollmentCancelledError: (
        410,
        N_("This enrollment was cancelled"),
        N_("Contact the administrator who invited you."),
    ),
    WrongStepError: (
        409,
        N_("This step is already done"),
        N_("Go back to the start of your enrollment link to see where you are."),
    ),
    TooManyAttemptsAtOnceError: (
        429,
        N_("Too many attempts at the same time"),
        N_("Wait a moment, then try again once."),
    ),
    DownloadWindowClosedError: (
        410,
        N_("The download period is over"),
        N_(
            "The certificate must be reissued: answer your secret question on the reissue page, "
            "or ask the administrator."
        ),
    ),
}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept or request.url.path.startswith(("/api/", "/pki/", "/healthz"))


def error_response(request: Request, status: int, title: str, text: str | None = None) -> Response:
    """The error in the form the client asked for; `title` and `text` are English msgids."""
    if _wants_json(request):
        return JSONResponse(
            {"type": "about:blank", "title": title, "status": status}
            | ({"detail": text} if text else {}),
            status_code=status,
            media_type="application/problem+json",
            headers={"cache-control": "no-store"},
        )
    renderer: Renderer = request.app.state.renderer
    return renderer.page(
        request,
        "error.html",
        status_code=status,
        title=gettext(request, title),
        text=gettext(request, text) if text else None,
    )


async def http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    title = _TITLES.get(status, _TITLES[500] if status >= 500 else _TITLES[400])
    return error_response(request, status, title, _TEXTS.get(status))


async def enrollment_error(request: Request, exc: Exception) -> Response:
    for kind, (status, title, text) in _ENROLLMENT_PAGES.items():
        if isinstance(exc, kind):
            return error_response(request, status, title, text)
    return await server_error(request, exc)


async def server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, _TITLES[500], _TEXTS[500])
