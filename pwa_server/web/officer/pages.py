"""Console pages every role reaches (overview, officers and their keys) and those of one role:
HSM and CA (security officers), the audit log (security officers and auditors)."""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pwa_server.audit import AuditAction, events, verify_since_last_seal
from pwa_server.officers.errors import OfficerError
from pwa_server.officers.models import StepUp, decode_credential_id
from pwa_server.officers.notices import account_notices
from pwa_server.officers.roles import Permission, Role
from pwa_server.officers.sessions import session_id
from pwa_server.pki.authority import fingerprint
from pwa_server.store.authorities import all_authorities, issued_count
from pwa_server.web.context import app_context
from pwa_server.web.officer.audit_trail import record_officer_event
from pwa_server.web.officer.guard import (
    ASSERTION_FIELD,
    check_csrf_header,
    client_address,
    confirmed_form,
    officer_for,
    remember_challenge,
    session_token,
    take_challenge,
)
from pwa_server.web.officer.rendering import console_page

AUDIT_PAGE_SIZE = 100


async def overview(request: Request) -> Response:
    """GET /officer/: where to go from here; the first visit explains bootstrap."""
    services = app_context(request).services
    if not await run_in_threadpool(services.officers.roster.has_officers):
        return console_page(request, "officer/no_officers.html", None)
    officer = await officer_for(request, Permission.VIEW_CONSOLE)
    notices = await run_in_threadpool(
        account_notices, services.engine, officer.id, now=services.now()
    )
    return console_page(
        request, "officer/overview.html", officer, notices=notices, actions=AuditAction
    )


async def hsm_page(request: Request) -> Response:
    """GET /officer/hsm: module, token, key objects, and the CAs with what they signed."""
    officer = await officer_for(request, Permission.MANAGE_CA)
    services = app_context(request).services
    info, keys = await run_in_threadpool(
        lambda: (services.token.info(), services.token.key_objects())
    )
    authorities = await run_in_threadpool(_authorities, request)
    return console_page(
        request,
        "officer/hsm.html",
        officer,
        token=info,
        keys=keys,
        authorities=authorities,
    )


def _authorities(request: Request) -> list[dict[str, Any]]:
    services = app_context(request).services
    with services.engine.connect() as connection:
        rows = all_authorities(connection)
        counts = {row.id: issued_count(connection, row.id) for row in rows}
    listed = []
    for row in rows:
        certificate = x509.load_der_x509_certificate(row.certificate_der)
        listed.append(
            {
                "name": row.name,
                "role": row.role,
                "status": row.status,
                "subject": certificate.subject.rfc4514_string(),
                "key": f"{row.key_label} ({row.key_algorithm})",
                "sha256": fingerprint(certificate),
                "not_before": certificate.not_valid_before_utc,
                "not_after": certificate.not_valid_after_utc,
                "issued": counts[row.id],
            }
        )
    return listed


async def audit_page(request: Request) -> Response:
    """GET /officer/audit: the log, newest first, with filters and the chain's state."""
    officer = await officer_for(request, Permission.VIEW_AUDIT)
    services = app_context(request).services
    filters = {
        name: (request.query_params.get(name) or "").strip()[:200] or None
        for name in ("action", "actor", "subject")
    }
    before = request.query_params.get("before")
    before_id = int(before) if before and before.isdigit() else None
    # Refused sign-ins of this minute too: the page shows what happened up to now.
    await run_in_threadpool(
        services.officers.refusals.flush, now=services.now(), including_this_minute=True
    )
    listed = await run_in_threadpool(
        events, services.engine, limit=AUDIT_PAGE_SIZE, before_id=before_id, **filters
    )
    verification = await run_in_threadpool(verify_since_last_seal, services.engine)
    return console_page(
        request,
        "officer/audit.html",
        officer,
        events=listed,
        filters=filters,
        actions=[action.value for action in AuditAction],
        verification=verification,
        next_before=listed[-1].id if len(listed) == AUDIT_PAGE_SIZE else None,
    )


async def officers_page(request: Request) -> Response:
    """GET /officer/officers: the officers, and the signed-in officer's own keys."""
    officer = await officer_for(request, Permission.VIEW_CONSOLE)
    services = app_context(request).services
    everyone = await run_in_threadpool(services.officers.roster.officers)
    keys = await run_in_threadpool(services.officers.keys.of, officer.id)
    sessions = await run_in_threadpool(
        services.officers.sessions.open_sessions, officer.id, now=services.now()
    )
    pending = (
        await run_in_threadpool(services.officers.invitations.pending, now=services.now())
        if officer.can(Permission.INVITE_OFFICERS)
        else []
    )
    return console_page(
        request,
        "officer/officers.html",
        officer,
        officers=everyone,
        keys=keys,
        roles=list(Role),
        sessions=sessions,
        pending=pending,
        names={person.id: person.display_name for person in everyone},
        current_session=session_id(session_token(request)),
    )


async def end_other_sessions(request: Request) -> Response:
    """POST /officer/sessions/end-others: sign out everywhere but here (after a step-up)."""
    officer = await officer_for(request, Permission.VIEW_CONSOLE)
    await confirmed_form(request, officer)
    services = app_context(request).services
    await run_in_threadpool(
        services.officers.sessions.end_others,
        session_token(request),
        officer_id=officer.id,
        client=client_address(request),
        now=services.now(),
    )
    return RedirectResponse("/officer/officers", status_code=303)


async def invite(request: Request) -> Response:
    """POST /officer/officers/invite: a one-time link, shown once (after a fresh assertion)."""
    officer = await officer_for(request, Permission.INVITE_OFFICERS)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    role = Role(str(form.get("role", "")))
    link = await run_in_threadpool(
        services.officers.invitations.invite,
        by_officer_id=officer.id,
        role=role,
        display_name=str(form.get("display_name", "")),
        now=services.now(),
    )
    return console_page(request, "officer/invited.html", officer, link=link)


async def approve_invitation(request: Request) -> Response:
    """POST /officer/invitations/{invitation_id}/approve: another security officer's approval
    of an invitation of a security officer (after a fresh assertion)."""
    officer = await officer_for(request, Permission.INVITE_OFFICERS)
    await confirmed_form(request, officer)
    services = app_context(request).services
    await run_in_threadpool(
        services.officers.invitations.approve,
        by_officer_id=officer.id,
        invitation_id=request.path_params["invitation_id"],
        now=services.now(),
    )
    return RedirectResponse("/officer/officers", status_code=303)


async def disable(request: Request) -> Response:
    """POST /officer/officers/{officer_id}/disable"""
    officer = await officer_for(request, Permission.MANAGE_OFFICERS)
    await confirmed_form(request, officer)
    services = app_context(request).services
    target = request.path_params["officer_id"]
    await run_in_threadpool(
        services.officers.roster.disable,
        by_officer_id=officer.id,
        officer_id=target,
        now=services.now(),
    )
    await run_in_threadpool(
        record_officer_event, request, officer.id, AuditAction.OFFICER_DISABLED, target
    )
    return RedirectResponse("/officer/officers", status_code=303)


async def add_key_options(request: Request) -> Response:
    """POST /officer/keys/options: options to register one more key of the officer."""
    check_csrf_header(request)
    officer = await officer_for(request, Permission.VIEW_CONSOLE)
    services = app_context(request).services
    ceremony = await run_in_threadpool(
        services.officers.keys.add_options, officer_id=officer.id, now=services.now()
    )
    remember_challenge(request, "add-key", ceremony.challenge)
    return Response(ceremony.options_json, media_type="application/json")


async def add_key(request: Request) -> Response:
    """POST /officer/keys: the new key, with a fresh assertion of one of the officer's keys
    (`assertion`, answering a step-up challenge) that confirms adding it."""
    check_csrf_header(request)
    officer = await officer_for(request, Permission.VIEW_CONSOLE)
    services = app_context(request).services
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    label = body.get("label")
    try:
        await run_in_threadpool(
            services.officers.keys.add,
            officer_id=officer.id,
            credential_json=json.dumps(body.get("credential")),
            expected_challenge=take_challenge(request, "add-key"),
            label=label if isinstance(label, str) and label.strip() else "security key",
            confirmation=StepUp(
                json.dumps(body.get(ASSERTION_FIELD)), take_challenge(request, "step-up")
            ),
            now=services.now(),
            client=client_address(request),
        )
    except OfficerError as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    return JSONResponse({"redirect": "/officer/officers"})


async def remove_key(request: Request) -> Response:
    """POST /officer/keys/{credential_id}/remove (never the last key)."""
    officer = await officer_for(request, Permission.VIEW_CONSOLE)
    await confirmed_form(request, officer)
    services = app_context(request).services
    credential_id = decode_credential_id(request.path_params["credential_id"])
    await run_in_threadpool(
        services.officers.keys.remove,
        officer_id=officer.id,
        credential_id=credential_id,
        now=services.now(),
        client=client_address(request),
    )
    return RedirectResponse("/officer/officers", status_code=303)


routes = [
    Route("/officer/", overview, methods=["GET", "HEAD"]),
    Route("/officer/hsm", hsm_page, methods=["GET", "HEAD"]),
    Route("/officer/audit", audit_page, methods=["GET", "HEAD"]),
    Route("/officer/officers", officers_page, methods=["GET", "HEAD"]),
    Route("/officer/officers/invite", invite, methods=["POST"]),
    Route("/officer/officers/{officer_id}/disable", disable, methods=["POST"]),
    Route("/officer/invitations/{invitation_id:int}/approve", approve_invitation, methods=["POST"]),
    Route("/officer/sessions/end-others", end_other_sessions, methods=["POST"]),
    Route("/officer/keys/options", add_key_options, methods=["POST"]),
    Route("/officer/keys", add_key, methods=["POST"]),
    Route("/officer/keys/{credential_id}/remove", remove_key, methods=["POST"]),
]
