"""Pages in the visitor's language (Japanese first), never cached, with a CSRF token at hand."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pwa_server import i18n
from pwa_server.vocabulary import (
    REISSUABLE,
    CeremonyKind,
    CeremonyStatus,
    CertificateStatus,
    DeliveryState,
    EnrollmentStatus,
)
from pwa_server.web.csrf import csrf_token

LANGUAGE_COOKIE = "lang"
_LOCALE_NAMES = {"ja": "日本語", "en": "English"}


def request_locale(request: Request) -> str:
    """?lang= (the switch), then the language cookie, then Accept-Language."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    return i18n.negotiate(request.headers.get("accept-language"), chosen)


def gettext(request: Request, message: str, **values: Any) -> str:
    """`message` translated for the visitor, with %(name)s values filled in."""
    text = i18n.translations(request_locale(request)).gettext(message)
    return text % values if values else text


def ngettext(request: Request, singular: str, plural: str, n: int, **values: Any) -> str:
    """The form of `singular`/`plural` for `n` in the visitor's language, values filled in."""
    text = i18n.translations(request_locale(request)).ngettext(singular, plural, n)
    return text % values


class Renderer:
    """Renders the templates of pwa_server/frontend with the translation catalogue."""

    def __init__(self) -> None:
        self.templates = i18n.Templates(
            names={
                "EnrollmentStatus": EnrollmentStatus,
                "CertificateStatus": CertificateStatus,
                "DeliveryState": DeliveryState,
                "CeremonyKind": CeremonyKind,
                "CeremonyStatus": CeremonyStatus,
                "REISSUABLE": REISSUABLE,
            }
        )

    def page(
        self, request: Request, template: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        locale = request_locale(request)
        other = "en" if locale == "ja" else "ja"
        html = self.templates.render(
            template,
            locale,
            csrf_token=csrf_token(request),
            other_locale=other,
            other_locale_name=_LOCALE_NAMES[other],
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        # Flow pages carry secrets or one-time state: never stored, by the browser or a proxy.
        response.headers["cache-control"] = "no-store"
        chosen = request.query_params.get("lang")
        if chosen in i18n.LOCALES:
            response.set_cookie(
                LANGUAGE_COOKIE,
                chosen,
                max_age=365 * 86400,
                secure=True,
                httponly=True,
                samesite="lax",
            )
        return response
