"""RFC 9457 problem documents for the API: every domain error the API can meet has one
status, one type and one title here."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from starlette.responses import JSONResponse

from pwa_server.enrollment.errors import (
    CertificateNotFoundError,
    DownloadWindowClosedError,
    EnrollmentCancelledError,
    EnrollmentError,
    EnrollmentExpiredError,
    EnrollmentLockedError,
    EnrollmentNotFoundError,
    InvalidInputError,
    TooManyAttemptsAtOnceError,
    WrongStepError,
)
from pwa_server.sites.errors import (
    ApiKeyRefusedError,
    IdempotencyKeyReusedError,
    InvalidSiteInputError,
    RateLimitedError,
    ReturnAssertionExpiredError,
    ReturnAssertionInvalidError,
    ReturnAssertionReplayedError,
    SiteError,
)
from pwa_server.web.api.schemas import FieldError, Problem

MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: stable names a client can switch on, which need no web page.
_TYPE_PREFIX = "urn:shomei:problem:"

_PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    ApiKeyRefusedError: (401, "unauthorized", "A valid API key is required"),
    RateLimitedError: (429, "rate-limited", "Too many requests"),
    IdempotencyKeyReusedError: (
        422,
        "idempotency-key-reused",
        "This Idempotency-Key was used for a different request",
    ),
    InvalidSiteInputError: (422, "invalid-request", "The request is not valid"),
    InvalidInputError: (422, "invalid-request", "The request is not valid"),
    EnrollmentNotFoundError: (404, "not-found", "No such enrollment"),
    CertificateNotFoundError: (404, "not-found", "No such certificate"),
    EnrollmentExpiredError: (410, "enrollment-expired", "The enrollment has expired"),
    EnrollmentCancelledError: (410, "enrollment-cancelled", "The enrollment was cancelled"),
    EnrollmentLockedError: (423, "enrollment-locked", "The enrollment is locked"),
    WrongStepError: (409, "wrong-state", "The enrollment is not in a state that allows this"),
    DownloadWindowClosedError: (409, "wrong-state", "The download period is over"),
    TooManyAttemptsAtOnceError: (429, "rate-limited", "Too many attempts at once"),
    ReturnAssertionExpiredError: (422, "assertion-expired", "The assertion has expired"),
    ReturnAssertionReplayedError: (409, "assertion-replayed", "The assertion was used before"),
    ReturnAssertionInvalidError: (422, "invalid-assertion", "The assertion is not valid"),
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


def for_error(error: EnrollmentError | SiteError, *, instance: str) -> JSONResponse:
    """The problem document of a domain error."""
    status, slug, title = next(
        (entry for kind, entry in _PROBLEMS.items() if isinstance(error, kind)),
        (500, "server-error", "Server error"),
    )
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
    elif isinstance(error, CertificateNotFoundError) and error.already_revoked:
        status, slug, title = 409, "already-revoked", "The certificate is already revoked"
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
