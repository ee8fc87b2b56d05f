"""Signing in and registering keys with WebAuthn. The pages run the ceremony in the browser
(officer.js); these JSON calls hand out options (the challenge stays in the signed session)
and check the answers with py_webauthn through the officer service."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pwa_server.audit import ActorKind, AuditAction, Outcome
from pwa_server.officers.errors import OfficerError, SignCountError
from pwa_server.officers.roles import Permission
from pwa_server.web.context import app_context
from pwa_server.web.csrf import check_csrf
from pwa_server.web.officer.audit_trail import record_console_event, record_officer_event
from pwa_server.web.officer.guard import (
    check_csrf_header,
    client_address,
    officer_for,
    remember_challenge,
    session_token,
    sign_in,
    sign_out,
    take_challenge,
)
from pwa_server.web.officer.rendering import console_page

# A credential in JSON is ~1 KiB; refuse anything much larger before parsing it.
_MAX_BODY = 16 * 1024


async def _json_body(request: Request) -> dict[str, object]:
    check_csrf_header(request)
    body = await request.body()
    if len(body) > _MAX_BODY:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _refused(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def sign_in_page(request: Request) -> Response:
    """GET /officer/sign-in"""
    return console_page(request, "officer/sign_in.html", None)


async def sign_in_options(request: Request) -> Response:
    """POST /officer/sign-in/options: a challenge for any of this site's keys."""
    await _json_body(request)
    services = app_context(request).services
    ceremony = services.officers.sign_in.options(now=services.now())
    remember_challenge(request, "sign-in", ceremony.challenge)
    return Response(ceremony.options_json, media_type="application/json")


async def sign_in_answer(request: Request) -> Response:
    """POST /officer/sign-in: the assertion; on success the console session starts."""
    body = await _json_body(request)
    services = app_context(request).services
    now = services.now()
    challenge = take_challenge(request, "sign-in")
    try:
        officer = await run_in_threadpool(
            services.officers.sign_in.authenticate,
            credential_json=json.dumps(body.get("credential")),
            expected_challenge=challenge,
            now=now,
        )
    except OfficerError as error:
        await run_in_threadpool(_record_failed_sign_in, request, error)
        return _refused("sign-in refused: " + str(error), 403)
    await sign_in(request, officer)
    return JSONResponse({"redirect": "/officer/"})


def _record_failed_sign_in(request: Request, error: OfficerError) -> None:
    services = app_context(request).services
    if not isinstance(error, SignCountError):
        services.officers.refusals.count(
            client=client_address(request), reason=type(error).__name__, now=services.now()
        )
        return
    # A key that may have been cloned is worth an event of its own, at once.
    record_console_event(
        request,
        actor_kind=ActorKind.USER,
        actor="unknown",
        action=AuditAction.OFFICER_SIGN_IN_FAILED,
        outcome=Outcome.FAILURE,
        details={
            "reason": type(error).__name__,
            "message": str(error)[:500],
            "warning": "the key's counter went backwards: it may have been cloned",
        },
    )


async def sign_out_action(request: Request) -> Response:
    """POST /officer/sign-out"""
    check_csrf(request, await request.form())
    services = app_context(request).services
    token = session_token(request)
    sign_out(request)
    if token:
        await run_in_threadpool(
            services.officers.sessions.end,
            token,
            client=client_address(request),
            now=services.now(),
        )
    return RedirectResponse("/officer/sign-in", status_code=303)


async def register_page(request: Request) -> Response:
    """GET /officer/register/{token}: who the invitation is for, and the key button."""
    services = app_context(request).services
    token = request.path_params["token"]
    try:
        invitation = await run_in_threadpool(
            services.officers.invitations.offer, token=token, now=services.now()
        )
    except OfficerError:
        return console_page(request, "officer/invitation_invalid.html", None, status_code=410)
    return console_page(
        request,
        "officer/register.html",
        None,
        invitation=invitation,
        invitation_token=request.path_params["token"],
    )


async def register_options(request: Request) -> Response:
    """POST /officer/register/{token}/options"""
    await _json_body(request)
    services = app_context(request).services
    try:
        ceremony = await run_in_threadpool(
            services.officers.invitations.registration_options,
            invitation_token=request.path_params["token"],
            now=services.now(),
        )
    except OfficerError as error:
        return _refused(str(error), 410)
    remember_challenge(request, "register", ceremony.challenge)
    return Response(ceremony.options_json, media_type="application/json")


async def register_answer(request: Request) -> Response:
    """POST /officer/register/{token}: the new key; the officer is then signed in."""
    body = await _json_body(request)
    services = app_context(request).services
    label = body.get("label")
    try:
        officer = await run_in_threadpool(
            services.officers.invitations.register,
            invitation_token=request.path_params["token"],
            credential_json=json.dumps(body.get("credential")),
            expected_challenge=take_challenge(request, "register"),
            label=label if isinstance(label, str) and label.strip() else "security key",
            now=services.now(),
        )
    except OfficerError as error:
        return _refused(str(error))
    await run_in_threadpool(
        record_officer_event,
        request,
        officer.id,
        AuditAction.OFFICER_REGISTERED,
        officer.id,
        {"role": officer.role.value},
    )
    await sign_in(request, officer)
    return JSONResponse({"redirect": "/officer/"})


async def step_up_options(request: Request) -> Response:
    """POST /officer/step-up/options: a challenge only the signed-in officer's keys answer."""
    await _json_body(request)
    officer = await officer_for(request, Permission.VIEW_CONSOLE)
    services = app_context(request).services
    ceremony = await run_in_threadpool(
        services.officers.sign_in.step_up_options, officer_id=officer.id, now=services.now()
    )
    remember_challenge(request, "step-up", ceremony.challenge)
    return Response(ceremony.options_json, media_type="application/json")


routes = [
    Route("/officer/sign-in", sign_in_page, methods=["GET", "HEAD"]),
    Route("/officer/sign-in/options", sign_in_options, methods=["POST"]),
    Route("/officer/sign-in", sign_in_answer, methods=["POST"]),
    Route("/officer/sign-out", sign_out_action, methods=["POST"]),
    Route("/officer/register/{token}", register_page, methods=["GET", "HEAD"]),
    Route("/officer/register/{token}/options", register_options, methods=["POST"]),
    Route("/officer/register/{token}", register_answer, methods=["POST"]),
    Route("/officer/step-up/options", step_up_options, methods=["POST"]),
]
