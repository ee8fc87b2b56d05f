"""The installation check (port 8444): the application judges the client certificate itself,
so a person gets a page, never a bare TLS error."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pwa_server.enrollment.installation import CheckResult, CheckStatus, check_installation
from pwa_server.i18n import N_
from pwa_server.pki.authority import fingerprint
from pwa_server.runtime import Services
from pwa_server.sites.assertions import ReturnToSite
from pwa_server.sites.urls import origin
from pwa_server.web.client_certificate import client_certificate
from pwa_server.web.context import app_context
from pwa_server.web.middleware.security_headers import allow_form_action, can_allow_form_action
from pwa_server.web.pages import grouped_fingerprint
from pwa_server.web.rendering import gettext
from pwa_server.web.safari import not_safari_on_ios

_EXPLANATIONS = {
    CheckStatus.MISSING: (
        N_("No certificate was presented"),
        N_(
            "Your browser did not send a certificate. Install it with the guide, and on iPhone "
            "open this page in Safari."
        ),
    ),
    CheckStatus.UNKNOWN: (
        N_("This certificate is not from this service"),
        N_(
            "The certificate your browser sent was not issued here. Choose the certificate "
            "issued by this service when your browser asks."
        ),
    ),
    CheckStatus.EXPIRED: (
        N_("This certificate has expired"),
        N_("Ask for a new certificate, or renew it if you were told how."),
    ),
    CheckStatus.REVOKED: (
        N_("This certificate was revoked"),
        N_(
            "It can no longer be used. Use the newest certificate you downloaded, or ask for a "
            "new one."
        ),
    ),
}


def _as_json(result: CheckResult, back: ReturnToSite | None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": result.status.value}
    if result.status is CheckStatus.OK and result.certificate is not None:
        body["certificate_user_id"] = result.certificate_user_id
        body["serial"] = format(result.certificate.serial_number, "x")
        body["not_after"] = result.certificate.not_valid_after_utc.isoformat()
    if back is not None:
        body["return_url"] = back.return_url
        body["assertion"] = back.assertion
    return body


async def _return_to_site(services: Services, result: CheckResult) -> ReturnToSite | None:
    """The way back to the site that sent the person, after a good check (None: no site)."""
    if result.status is not CheckStatus.OK or result.certificate is None or result.issuer is None:
        return None
    return await run_in_threadpool(
        services.assertions.return_to_site,
        services.engine,
        result.issuer,
        result.certificate,
        now=services.now(),
    )


async def installation_check(request: Request) -> Response:
    """GET /check: 'installed and usable', or what is wrong, as a page or as JSON; after a
    good check, the way back to the site that sent the person, with a signed assertion."""
    services = app_context(request).services
    result = await run_in_threadpool(
        check_installation,
        services.engine,
        services.issuers,
        client_certificate(request),
        now=services.now(),
    )
    back = await _return_to_site(services, result)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(_as_json(result, back), headers={"cache-control": "no-store"})
    if back is not None and not can_allow_form_action(origin(back.return_url)):
        back = None  # e.g. an IPv6 literal: no CSP could let the form post there
    certificate = None
    if result.certificate is not None:
        certificate = {
            "subject": result.certificate.subject.rfc4514_string(),
            "issuer": result.certificate.issuer.rfc4514_string(),
            "serial": format(result.certificate.serial_number, "X"),
            "not_before": result.certificate.not_valid_before_utc,
            "not_after": result.certificate.not_valid_after_utc,
            "user_id": result.certificate_user_id,
            "fingerprint": grouped_fingerprint(fingerprint(result.certificate)),
        }
    # Chrome, Firefox or an in-app browser on iOS never presents a profile's certificate.
    in_safari = None
    if result.status is CheckStatus.MISSING:
        in_safari = not_safari_on_ios(request)
    title, text = _EXPLANATIONS.get(result.status, ("", ""))
    renderer = app_context(request).renderer
    response = renderer.page(
        request,
        "check.html",
        status=result.status.value,
        title=gettext(request, title) if title else "",
        text=gettext(request, text) if text else "",
        certificate=certificate,
        back=back,
        retry_in_safari=in_safari,
        link=services.check_url,
        # The guides live on the enrollment listener, not on this one.
        public_url=services.settings.effective_public_url,
    )
    if back is not None:
        allow_form_action(response, origin(back.return_url))
    return response


routes = [Route("/check", installation_check, methods=["GET", "HEAD"])]
