"""Pages in the visitor's language (Japanese first), never cached, with a CSRF token at hand."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pwa_server import i18n
from pwa_server.settings import Settings
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


@dataclass(frozen=True)
class Operator:
    """Who runs this service, as every user page's footer and next actions name them."""

    name: str | None = None
    contact_url: str | None = None
    contact_email: str | None = None
    has_logo: bool = False  # served at LOGO_PATH

    @classmethod
    def from_settings(cls, settings: Settings) -> Operator:
        """The operator block the settings describe (every part optional)."""
        return cls(
            name=settings.operator_name,
            contact_url=settings.operator_contact_url,
            contact_email=settings.operator_contact_email,
            has_logo=settings.operator_logo is not None,
        )

    @property
    def has_contact(self) -> bool:
        """True when people can be told where to ask."""
        return self.contact_url is not None or self.contact_email is not None


LOGO_PATH = "/operator-logo"


class Renderer:
    """Renders the templates of pwa_server/frontend with the translation catalogue, dates in
    the operator's time zone and the operator's block in every page."""

    def __init__(self, *, zone: zoneinfo.ZoneInfo, operator: Operator) -> None:
        self.templates = i18n.Templates(
            zone=zone,
            names={
                "operator": operator,
                "LOGO_PATH": LOGO_PATH,
                "EnrollmentStatus": EnrollmentStatus,
                "CertificateStatus": CertificateStatus,
                "DeliveryState": DeliveryState,
                "CeremonyKind": CeremonyKind,
                "CeremonyStatus": CeremonyStatus,
                "REISSUABLE": REISSUABLE,
            },
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
