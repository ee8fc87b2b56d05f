"""Console pages: the signed-in officer, what their role allows (for the navigation only:
every handler checks again) and the role names in the visitor's language."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pwa_server.i18n import N_
from pwa_server.officers.models import Officer
from pwa_server.officers.roles import Permission, Role
from pwa_server.web.context import app_context
from pwa_server.web.rendering import gettext

ROLE_NAMES = {
    Role.SECURITY_OFFICER: N_("Security officer"),
    Role.REGISTRATION_OFFICER: N_("Registration officer"),
    Role.AUDITOR: N_("Auditor"),
}


def console_page(
    request: Request,
    template: str,
    officer: Officer | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a console template for `officer` (None: signed out)."""
    renderer = app_context(request).renderer
    permissions = {
        permission.name.lower(): officer is not None and officer.can(permission)
        for permission in Permission
    }
    return renderer.page(
        request,
        template,
        status_code=status_code,
        officer=officer,
        permissions=permissions,
        role_names={role: gettext(request, name) for role, name in ROLE_NAMES.items()},
        **context,
    )
