"""CSRF protection: a random token in the signed session, echoed by every form."""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

FIELD = "csrf_token"


def csrf_token(request: Request) -> str:
    """This session's token, created on first use (pages without a session get one)."""
    if "session" not in request.scope:
        return ""
    token = request.session.get(FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[FIELD] = token
    return token


def check_csrf(request: Request, form: FormData) -> None:
    """403 unless the form carries this session's token."""
    expected = request.session.get(FIELD)
    given = form.get(FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise HTTPException(403, "CSRF token missing or wrong")
