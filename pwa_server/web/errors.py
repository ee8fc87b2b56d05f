"""Errors become a page a person understands or an RFC 9457 problem document, never a trace.
Domain errors are mapped to HTTP statuses here, and only here."""

from __future__ import annotations

import logging
from enum import StrEnum

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from hsm import HsmError
from pwa_server.enrollment.errors import (
    CertificateNotFoundError,
    DownloadThrottledError,
    DownloadWindowClosedError,
    EnrollmentCancelledError,
    EnrollmentExpiredError,
    EnrollmentLockedError,
    EnrollmentNotFoundError,
    InvalidInputError,
    SecretCheckBusyError,
    TooManyAttemptsAtOnceError,
    WrongStepError,
)
from pwa_server.errors import ShomeiError
from pwa_server.i18n import N_
from pwa_server.officers.errors import (
    AlreadyApprovedError,
    ApprovalsMissingError,
    CeremonyClosedError,
    CeremonyFailedError,
    CeremonyRefusedError,
    InvalidCeremonyError,
    InvalidOfficerInputError,
    InvitationApprovalRefusedError,
    InvitationAwaitingApprovalError,
    LastKeyError,
    LastSecurityOfficerError,
    OfficerDisabledError,
    OfficerError,
    PermissionDeniedError,
)
from pwa_server.sites.errors import SiteError, SiteExistsError, SiteNotFoundError
from pwa_server.web.context import app_context
from pwa_server.web.error_status import status_of
from pwa_server.web.rendering import gettext

logger = logging.getLogger("shomei.web")

_TITLES = {
    400: N_("Bad request"),
    401: N_("Sign in again"),
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

_NOT_ACCEPTED = (
    N_("The input was not accepted"),
    N_("Go back, check what you entered and try again."),
)
# The words of a domain error's page, as English msgids (title, explanation); the status
# comes from the error's kind (error_status.py). The first entry the error is an instance of
# wins, so a subclass comes before its parent and the packages' roots come last.
_PAGES: dict[type[ShomeiError], tuple[str, str]] = {
    EnrollmentNotFoundError: (
        N_("This enrollment link is not valid"),
        N_("Check that you opened the whole link from your invitation."),
    ),
    EnrollmentExpiredError: (
        N_("This enrollment link has expired"),
        N_("Ask the person who invited you to send a new invitation."),
    ),
    EnrollmentLockedError: (
        N_("This enrollment is locked"),
        N_("Too many wrong entries. Contact the administrator who invited you to unlock it."),
    ),
    EnrollmentCancelledError: (
        N_("This enrollment was cancelled"),
        N_("Contact the administrator who invited you."),
    ),
    WrongStepError: (
        N_("This step is already done"),
        N_("Go back to the start of your enrollment link to see where you are."),
    ),
    TooManyAttemptsAtOnceError: (
        N_("Too many attempts at the same time"),
        N_("Wait a moment, then try again once."),
    ),
    DownloadThrottledError: (
        N_("Too many wrong entries"),
        N_(
            "The certificate user ID or the download password was wrong several times. "
            "Try again in %(seconds)s seconds, copying the download password carefully."
        ),
    ),
    SecretCheckBusyError: (
        N_("Many people are checking at once"),
        N_("Try again in %(seconds)s seconds."),
    ),
    InvalidInputError: _NOT_ACCEPTED,
    CertificateNotFoundError: (
        N_("No such valid certificate"),
        N_("It does not exist, or it was revoked already."),
    ),
    DownloadWindowClosedError: (
        N_("The download period is over"),
        N_(
            "The certificate must be reissued: answer your secret question on the reissue page, "
            "or ask the administrator."
        ),
    ),
    CeremonyRefusedError: (
        N_("Your security key did not confirm this"),
        N_(
            "The confirmation was refused or came too late. Go back and try again with a key "
            "registered to you."
        ),
    ),
    ApprovalsMissingError: (
        N_("More approvals are needed"),
        N_("Other security officers must approve this ceremony before it can be carried out."),
    ),
    AlreadyApprovedError: (
        N_("You approved this already"),
        N_("Another security officer must give the next approval."),
    ),
    CeremonyClosedError: (
        N_("This ceremony is closed"),
        N_("It was carried out, rejected, or it expired. Propose a new one if needed."),
    ),
    CeremonyFailedError: (
        N_("The ceremony failed"),
        N_("Nothing was changed. The audit log and the ceremony list show the error."),
    ),
    PermissionDeniedError: (
        N_("This request was refused"),
        N_("Your role does not allow this."),
    ),
    InvitationAwaitingApprovalError: (
        N_("This invitation is not approved yet"),
        N_("Another security officer must approve it on the Officers page first."),
    ),
    InvitationApprovalRefusedError: (
        N_("This approval was not accepted"),
        N_("The inviter cannot approve their own invitation, and each officer approves once."),
    ),
    LastKeyError: (
        N_("Your last key cannot be removed"),
        N_("Register another key first: without a key you could not sign in."),
    ),
    LastSecurityOfficerError: (
        N_("The last security officer cannot be disabled"),
        N_("Invite another security officer first."),
    ),
    InvalidOfficerInputError: _NOT_ACCEPTED,
    InvalidCeremonyError: _NOT_ACCEPTED,
    OfficerDisabledError: (
        N_("This request was refused"),
        N_("The officer, key or invitation does not exist or cannot be used."),
    ),
    SiteExistsError: (
        N_("A site of that name exists already"),
        N_("Choose another short name."),
    ),
    SiteNotFoundError: (N_("Not found"), N_("There is no site of that name.")),
    OfficerError: (
        N_("Not found"),
        N_("The officer, key or invitation does not exist or cannot be used."),
    ),
    SiteError: _NOT_ACCEPTED,
}


class NextAction(StrEnum):
    """The one thing a person can do next on an error page, shown as its prominent link."""

    REISSUE = "reissue"  # a new download password with the secret answer, at /reissue
    ADMINISTRATOR = "administrator"  # only whoever sent the invitation can help


# Errors without an entry leave a person nothing to do but wait, retry or go back.
_NEXT_ACTIONS: dict[type[ShomeiError], NextAction] = {
    EnrollmentExpiredError: NextAction.ADMINISTRATOR,
    EnrollmentLockedError: NextAction.ADMINISTRATOR,
    EnrollmentCancelledError: NextAction.ADMINISTRATOR,
    DownloadWindowClosedError: NextAction.REISSUE,
    # Repeated wrong download passwords: most often the password was lost or mistyped.
    DownloadThrottledError: NextAction.REISSUE,
}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    sent_json = request.headers.get("content-type", "").startswith("application/json")
    return (
        "json" in accept or sent_json or request.url.path.startswith(("/api/", "/pki/", "/healthz"))
    )


def error_response(
    request: Request,
    status: int,
    title: str,
    text: str | None = None,
    *,
    retry_after: int | None = None,
    next_action: NextAction | None = None,
) -> Response:
    """The error in the form the client asked for; `title` and `text` are English msgids
    (`text` may name `%(seconds)s`, filled with `retry_after`); a page shows `next_action`."""
    headers = {"cache-control": "no-store"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if _wants_json(request):
        return JSONResponse(
            {"type": "about:blank", "title": title, "status": status}
            | ({"detail": text % {"seconds": retry_after}} if text else {}),
            status_code=status,
            media_type="application/problem+json",
            headers=headers,
        )
    renderer = app_context(request).renderer
    response = renderer.page(
        request,
        "error.html",
        status_code=status,
        title=gettext(request, title),
        text=gettext(request, text, seconds=retry_after) if text else None,
        next_action=next_action,
    )
    response.headers.update(headers)
    return response


def _generic_title(status: int) -> str:
    return _TITLES.get(status, _TITLES[500] if status >= 500 else _TITLES[400])


async def http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return error_response(request, status, _generic_title(status), _TEXTS.get(status))


async def domain_error(request: Request, exc: Exception) -> Response:
    """A domain error: the status from its kind, the words from its entry in _PAGES (one
    without an entry, such as a database that went away, gets the status's generic page)."""
    if not isinstance(exc, ShomeiError):
        return await server_error(request, exc)
    status = status_of(exc)
    words: tuple[str, str | None] | None = next(
        (words for error, words in _PAGES.items() if isinstance(exc, error)), None
    )
    if words is None:
        words = (_generic_title(status), _TEXTS.get(status))
    if status >= 500:
        logger.error(
            "%s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc
        )
    next_action = next(
        (action for error, action in _NEXT_ACTIONS.items() if isinstance(exc, error)), None
    )
    return error_response(
        request,
        status,
        *words,
        retry_after=getattr(exc, "retry_after", None),
        next_action=next_action,
    )


# The token did not answer: nothing was changed, and it may answer again shortly.
HSM_RETRY_AFTER = 5


async def hsm_unavailable(request: Request, exc: Exception) -> Response:
    """A token fault during a request: 503 with Retry-After, never a trace."""
    logger.error("HSM error on %s %s: %s", request.method, request.url.path, exc)
    status = status_of(exc) if isinstance(exc, HsmError) else 500
    return error_response(
        request,
        status,
        _generic_title(status),
        N_("The key store is not answering. Nothing was changed; try again in a moment."),
        retry_after=HSM_RETRY_AFTER,
    )


async def sign_in_required(request: Request, exc: Exception) -> Response:
    """No console session (or it went idle): to the sign-in page, or 401 for a script."""
    if request.method == "GET":
        return RedirectResponse("/officer/sign-in", status_code=303)
    return error_response(
        request,
        401,
        N_("Sign in again"),
        N_("Your console session ended. Sign in with your key and try again."),
    )


async def server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, _TITLES[500], _TEXTS[500])
