"""Key ceremonies: a new issuing CA, or retiring one, proposed by one security officer and
approved by others (dual control), each step confirmed with the officer's key."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pwa_server.officers.key_ceremonies import KeyCeremonies
from pwa_server.officers.roles import Permission
from pwa_server.store.authorities import all_authorities
from pwa_server.vocabulary import AuthorityRole, AuthorityStatus, CeremonyKind
from pwa_server.web.context import app_context
from pwa_server.web.officer.guard import confirmed_form, officer_for
from pwa_server.web.officer.rendering import console_page

_STEPS = ("approve", "reject", "execute")


def _ceremonies(request: Request) -> KeyCeremonies:
    services = app_context(request).services
    return KeyCeremonies.from_settings(services.settings, services.engine, services.token)


async def ceremony_list(request: Request) -> Response:
    """GET /officer/ceremonies: open and past ceremonies, and whether dual control is on."""
    officer = await officer_for(request, Permission.MANAGE_CA)
    services = app_context(request).services
    ceremonies = _ceremonies(request)

    def load() -> dict[str, Any]:
        with services.engine.connect() as connection:
            issuing = [
                row
                for row in all_authorities(connection)
                if row.role == AuthorityRole.ISSUING and row.status == AuthorityStatus.ACTIVE
            ]
        return {
            "ceremonies": ceremonies.ceremonies(now=services.now()),
            "dual_control": ceremonies.dual_control_active(),
            "required": ceremonies.required_approvals(),
            "issuing": issuing,
        }

    context = await run_in_threadpool(load)
    return console_page(request, "officer/ceremonies.html", officer, **context)


async def propose(request: Request) -> Response:
    """POST /officer/ceremonies"""
    officer = await officer_for(request, Permission.MANAGE_CA)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    kind = str(form.get("kind", ""))
    if kind not in {item.value for item in CeremonyKind}:
        raise HTTPException(400, "unknown kind of ceremony")
    target = str(form.get("target", ""))
    await run_in_threadpool(
        lambda: _ceremonies(request).propose(
            officer_id=officer.id,
            kind=CeremonyKind(kind),
            target=int(target) if target.isdigit() else None,
            now=services.now(),
        )
    )
    return RedirectResponse("/officer/ceremonies", status_code=303)


async def ceremony_step(request: Request) -> Response:
    """POST /officer/ceremonies/{ceremony_id}/{step}: approve, reject or execute."""
    step = request.path_params["step"]
    if step not in _STEPS:
        raise HTTPException(404)
    permission = Permission.MANAGE_CA if step == "execute" else Permission.APPROVE_CEREMONY
    officer = await officer_for(request, permission)
    await confirmed_form(request, officer)
    services = app_context(request).services
    ceremony_id = int(request.path_params["ceremony_id"])
    method = getattr(_ceremonies(request), step)
    await run_in_threadpool(
        lambda: method(ceremony_id=ceremony_id, officer_id=officer.id, now=services.now())
    )
    return RedirectResponse("/officer/ceremonies", status_code=303)


routes = [
    Route("/officer/ceremonies", ceremony_list, methods=["GET", "HEAD"]),
    Route("/officer/ceremonies", propose, methods=["POST"]),
    Route("/officer/ceremonies/{ceremony_id:int}/{step}", ceremony_step, methods=["POST"]),
]
