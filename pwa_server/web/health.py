"""GET /healthz: is the database answering, and does the token sign with the issuing CA key?"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from hsm import HsmError
from pwa_server.pki.authority import AuthorityError
from pwa_server.runtime import Services
from pwa_server.store.database import DatabaseError, ping
from pwa_server.web.context import app_context


def _check(services: Services) -> tuple[dict[str, str], list[str]]:
    report = {"database": "ok", "hsm": "ok"}
    reasons: list[str] = []
    try:
        ping(services.engine)
    except DatabaseError as error:
        report["database"] = "unavailable"
        reasons.append(str(error))
    try:
        services.issuing.probe()
    except (HsmError, AuthorityError) as error:
        report["hsm"] = "unavailable"
        reasons.append(str(error))
    return report, reasons


async def healthz(request: Request) -> JSONResponse:
    """200 with every component ok, otherwise 503 naming the reason."""
    services = app_context(request).services
    report, reasons = await run_in_threadpool(_check, services)
    if reasons:
        body = {"status": "unavailable", **report, "reason": "; ".join(reasons)}
        return JSONResponse(body, status_code=503, headers={"cache-control": "no-store"})
    return JSONResponse({"status": "ok", **report}, headers={"cache-control": "no-store"})
