"""Errors become a page a person understands or an RFC 9457 problem document, never a trace."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

logger = logging.getLogger("shomei.web")

# Until the translation catalogue arrives with the enrollment pages, error texts are kept here
# in both languages, Japanese first.
_TITLES = {
    400: ("リクエストが正しくありません", "Bad request"),
    403: ("アクセスできません", "Forbidden"),
    404: ("ページが見つかりません", "Page not found"),
    405: ("この操作はできません", "Method not allowed"),
    500: ("サーバーでエラーが発生しました", "Server error"),
    503: ("ただいま利用できません", "Service unavailable"),
}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept or request.url.path.startswith(("/api/", "/pki/", "/healthz"))


def error_response(request: Request, status: int) -> Response:
    """The error for `status` in the form the client asked for."""
    japanese, english = _TITLES.get(status, _TITLES[500] if status >= 500 else _TITLES[400])
    if _wants_json(request):
        return JSONResponse(
            {"type": "about:blank", "title": english, "status": status},
            status_code=status,
            media_type="application/problem+json",
        )
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "title_ja": japanese, "title_en": english},
        status_code=status,
        headers={"cache-control": "no-store"},
    )


async def http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return error_response(request, status)


async def server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500)
