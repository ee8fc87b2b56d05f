"""RFC 9457 problem documents for the API: every domain error the API can meet has one
status, one type and one title here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from pydantic import ValidationError
from starlette.responses import JSONResponse

from pwa_server.enrollment.errors import (
    CertificateAlreadyRevokedError,
    CertificateNotFoundError,
    DownloadWindowClosedError,
    EnrollmentCancelledError,
    EnrollmentExpiredError,
    EnrollmentLockedError,
    EnrollmentNotFoundError,
    InvalidInputError,
    TooManyAttemptsAtOnceError,
    WrongStepError,
)
from pwa_server.errors import ShomeiError
from pwa_server.sites.errors import (
    ApiKeyRefusedError,
    IdempotencyKeyReusedError,
    InvalidSiteInputError,
    RateLimitedError,
    ReturnAssertionExpiredError,
    ReturnAssertionInvalidError,
    ReturnAssertionReplayedError,
)
from pwa_server.web.api.schemas import FieldError, Problem
from pwa_server.web.error_status import status_of

logger = logging.getLogger("shomei.web")

MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: stable names a client can switch on, which need no web page.
_TYPE_PREFIX = "urn:shomei:problem:"

# (type, title) of each domain error the API can meet; the status comes from the error's kind
# (error_status.py). The first entry the error is an instance of wins: subclasses first.
_PROBLEMS: dict[type[ShomeiError], tuple[str, str]] = {
    ApiKeyRefusedError: ("unauthorized", "A valid API key is required"),
    RateLimitedError: ("rate-limited", "Too many requests"),
    IdempotencyKeyReusedError: (
        "idempotency-key-reused",
        "This Idempotency-Key was used for a different request",
    ),
    InvalidSiteInputError: ("invalid-request", "The request is not valid"),
    InvalidInputError: ("invalid-request", "The request is not valid"),
    EnrollmentNotFoundError: ("not-found", "No such enrollment"),
    CertificateAlreadyRevokedError: ("already-revoked", "The certificate is already revoked"),
    CertificateNotFoundError: ("not-found", "No such certificate"),
    EnrollmentExpiredError: ("enrollment-expired", "The enrollment has expired"),
    EnrollmentCancelledError: ("enrollment-cancelled", "The enrollment was cancelled"),
    EnrollmentLockedError: ("enrollment-locked", "The enrollment is locked"),
    WrongStepError: ("wrong-state", "The enrollment is not in a state that allows this"),
    DownloadWindowClosedError: ("wrong-state", "The download period is over"),
    TooManyAttemptsAtOnceError: ("rate-limited", "Too many attempts at once"),
    ReturnAssertionExpiredError: ("assertion-expired", "The assertion has expired"),
    ReturnAssertionReplayedError: ("assertion-replayed", "The assertion was used before"),
    ReturnAssertionInvalidError: ("invalid-assertion", "The assertion is not valid"),
}


def problem(
    status: int,
    slug: str,
    title: str,
    *,
    detail: str | None = None,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem document response."""
    body = Problem(
        type=_TYPE_PREFIX + slug,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers={"cache-control": "no-store", **(headers or {})},
    )


def for_error(error: ShomeiError, *, instance: str) -> JSONResponse:
    """The problem document of a domain error."""
    status = status_of(error)
    entry = next((entry for kind, entry in _PROBLEMS.items() if isinstance(error, kind)), None)
    if entry is None:
        # One the API does not expect to meet (the database went away): named by its kind.
        logger.error("%s on %s", type(error).__name__, instance, exc_info=error)
        entry = (error.kind.value, HTTPStatus(status).phrase)
    slug, title = entry
    headers: dict[str, str] = {}
    errors = None
    detail = None
    if isinstance(error, InvalidInputError | InvalidSiteInputError):
        errors = [FieldError(pointer=_pointer(error.field), detail=error.reason)]
        detail = f"{error.field}: {error.reason}"
    elif isinstance(error, WrongStepError):
        detail = str(error)
    elif isinstance(error, ReturnAssertionInvalidError):
        detail = error.reason
    elif isinstance(error, RateLimitedError):
        headers["retry-after"] = str(error.retry_after)
        headers["ratelimit-limit"] = str(error.limit)
        headers["ratelimit-remaining"] = "0"
        headers["ratelimit-reset"] = str(error.retry_after)
        detail = str(error)
    elif isinstance(error, ApiKeyRefusedError):
        headers["www-authenticate"] = 'Bearer realm="shomei"'
    return problem(
        status, slug, title, detail=detail, instance=instance, errors=errors, headers=headers
    )


def for_validation(error: ValidationError, *, instance: str) -> JSONResponse:
    """422 naming every field that failed validation."""
    errors = [
        FieldError(pointer=json_pointer(entry["loc"]), detail=entry["msg"])
        for entry in error.errors(include_url=False)
    ]
    return problem(
        422, "invalid-request", "The request is not valid", instance=instance, errors=errors
    )


def json_pointer(parts: tuple[int | str, ...] | list[int | str]) -> str:
    """RFC 6901: "" is the whole document; "~" and "/" in a name are escaped."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _pointer(field: str) -> str:
    """Header names stay as they are; fields become JSON Pointers."""
    return field if field[:1].isupper() else json_pointer([field])
