"""Who is signed in to the console, and may they do this? The concept apart from the pages:
the signed cookie holds only the token of a session kept on the server (officers/sessions.py),
which names the officer and ends on sign-out, idling or its lifetime, whatever a copy of the
cookie says; every page and action asks `officer_for` with its permission."""

from __future__ import annotations

import base64
import hmac
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from pwa_server.officers.models import Officer
from pwa_server.officers.roles import Permission
from pwa_server.runtime import Services
from pwa_server.web.context import app_context
from pwa_server.web.csrf import FIELD as CSRF_FIELD
from pwa_server.web.csrf import check_csrf

_SESSION = "officer_session"
_CHALLENGE = "webauthn_challenge"
CSRF_HEADER = "x-csrf-token"
# The form field that carries a fresh assertion for a sensitive action.
ASSERTION_FIELD = "assertion"


class SignInRequiredError(Exception):
    """No officer is signed in, or the session went idle: the console asks for the key."""


async def officer_for(request: Request, permission: Permission) -> Officer:
    """The signed-in officer, if their role grants `permission` (403 otherwise).

    Checked against the database on every request: an ended session, a disabled officer or a
    changed role takes effect at once, whatever the cookie says. The database is read in the
    thread pool, as every handler's, so that the event loop serves other requests meanwhile.
    """
    services = app_context(request).services
    officer = await run_in_threadpool(_active_officer, services, session_token(request))
    if officer is None:
        sign_out(request)
        raise SignInRequiredError()
    if not officer.can(permission):
        raise HTTPException(403, "your role does not allow this")
    return officer


def _active_officer(services: Services, token: str) -> Officer | None:
    """The officer of the live session `token`, if that officer is active."""
    session = services.officers.sessions.resume(token, now=services.now())
    if session is None:
        return None
    officer = services.officers.roster.officer(session.officer_id)
    return officer if officer.active else None


def session_token(request: Request) -> str:
    """The token of this browser's console session ("" when signed out)."""
    token = request.session.get(_SESSION)
    return token if isinstance(token, str) else ""


async def sign_in(request: Request, officer: Officer) -> None:
    """Start a console session (a new session: nothing from before sign-in is kept)."""
    services = app_context(request).services
    token = await run_in_threadpool(
        services.officers.sessions.start,
        officer.id,
        client=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
        now=services.now(),
    )
    request.session.clear()
    request.session[_SESSION] = token


def sign_out(request: Request) -> None:
    """Forget the console session in this browser (the caller ended it on the server)."""
    for key in (_SESSION, _CHALLENGE):
        request.session.pop(key, None)


def client_address(request: Request) -> str:
    """The client's address as the audit trail and the session list name it."""
    return request.client.host if request.client else "unknown"


def remember_challenge(request: Request, purpose: str, challenge: bytes) -> None:
    """Keep a ceremony's challenge in the signed session until its answer comes; one per
    purpose, since adding a key answers a step-up and a registration together."""
    kept: Any = request.session.get(_CHALLENGE)
    pending = dict(kept) if isinstance(kept, dict) else {}
    pending[purpose] = base64.urlsafe_b64encode(challenge).decode("ascii")
    request.session[_CHALLENGE] = pending


def take_challenge(request: Request, purpose: str) -> bytes:
    """The challenge of the ceremony `purpose`, removed so that it answers once."""
    kept: Any = request.session.get(_CHALLENGE)
    if not isinstance(kept, dict):
        return b""
    pending = dict(kept)
    value = pending.pop(purpose, None)
    request.session[_CHALLENGE] = pending
    if not isinstance(value, str):
        return b""
    try:
        return base64.urlsafe_b64decode(value)
    except ValueError:
        return b""


def check_csrf_header(request: Request) -> None:
    """403 unless a JSON call carries this session's CSRF token in X-CSRF-Token."""
    expected = request.session.get(CSRF_FIELD)
    given = request.headers.get(CSRF_HEADER, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        raise HTTPException(403, "CSRF token missing or wrong")


async def step_up(request: Request, officer: Officer, form: FormData) -> None:
    """A sensitive action: the form must carry a fresh assertion of this officer's key,
    answering the challenge the console just asked for (raises OfficerError otherwise)."""
    services = app_context(request).services
    assertion = form.get(ASSERTION_FIELD)
    await run_in_threadpool(
        services.officers.sign_in.step_up,
        officer_id=officer.id,
        credential_json=assertion if isinstance(assertion, str) else "",
        expected_challenge=take_challenge(request, "step-up"),
        now=services.now(),
    )


async def confirmed_form(request: Request, officer: Officer) -> FormData:
    """The form of a sensitive action: this session's CSRF token and a fresh assertion of the
    officer's key, both checked before the action runs."""
    form = await request.form()
    check_csrf(request, form)
    await step_up(request, officer, form)
    return form
