"""Console actions in the audit log, each in its own short transaction after the action."""

from __future__ import annotations

from starlette.requests import Request

from pwa_server.audit import ActorKind, AuditAction, JsonValue, Outcome, record
from pwa_server.web.context import app_context
from pwa_server.web.officer.guard import client_address


def record_console_event(
    request: Request,
    *,
    actor_kind: ActorKind,
    actor: str,
    action: AuditAction,
    subject: str | None = None,
    subject_kind: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: dict[str, JsonValue] | None = None,
) -> None:
    """Append one event; the client's address goes into its details."""
    services = app_context(request).services
    client = client_address(request)
    with services.engine.begin() as connection:
        record(
            connection,
            actor_kind=actor_kind,
            actor=actor,
            action=action,
            subject_kind=subject_kind or ("officer" if subject else None),
            subject=subject,
            outcome=outcome,
            details=(details or {}) | {"client": client},
            now=services.now(),
        )


def record_officer_event(
    request: Request,
    officer_id: str,
    action: AuditAction,
    subject: str | None = None,
    details: dict[str, JsonValue] | None = None,
) -> None:
    """An officer's own console action (sign-in, keys, invitations)."""
    record_console_event(
        request,
        actor_kind=ActorKind.OFFICER,
        actor=officer_id,
        action=action,
        subject=subject,
        details=details,
    )
