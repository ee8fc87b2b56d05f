"""Registration officers' pages: enrollments (search, create with the one-time password and a
QR code shown once, unlock, cancel, reissue) and their certificates (detail, download of the
certificate, never a key, and revocation with an RFC 5280 reason)."""

from __future__ import annotations

import segno
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pwa_server.audit import Actor
from pwa_server.enrollment import revocation
from pwa_server.enrollment.errors import EnrollmentNotFoundError
from pwa_server.officers.roles import Permission
from pwa_server.store.certificates import (
    certificate_by_serial,
    certificates_of_enrollment,
    search_certificates,
)
from pwa_server.store.enrollments import enrollment_by_id, search_enrollments
from pwa_server.vocabulary import (
    CertificateStatus,
    EnrollmentStatus,
    KeyProfile,
    RevocationReason,
    word_of,
)
from pwa_server.web.context import app_context
from pwa_server.web.officer.forms import chosen_key_profile
from pwa_server.web.officer.guard import confirmed_form, officer_for
from pwa_server.web.officer.rendering import console_page

# The console's buttons, each an EnrollmentService method of the same name.
_ACTIONS = ("unlock", "cancel", "reissue", "renew", "resend_mail")


async def enrollment_list(request: Request) -> Response:
    """GET /officer/enrollments?status=&q="""
    officer = await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    services = app_context(request).services
    status = word_of(EnrollmentStatus, request.query_params.get("status"))
    text = (request.query_params.get("q") or "").strip()[:200] or None

    def search() -> list[object]:
        with services.engine.connect() as connection:
            return list(search_enrollments(connection, status=status, text=text))

    rows = await run_in_threadpool(search)
    return console_page(
        request,
        "officer/enrollments.html",
        officer,
        enrollments=rows,
        statuses=list(EnrollmentStatus),
        status=status,
        q=text or "",
    )


async def new_enrollment(request: Request) -> Response:
    """GET /officer/enrollments/new"""
    officer = await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    return console_page(
        request, "officer/enrollment_new.html", officer, profiles=list(KeyProfile), error=None
    )


async def create_enrollment(request: Request) -> Response:
    """POST /officer/enrollments: the URL, the one-time password (once) and its QR code."""
    officer = await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    invitation = await run_in_threadpool(
        lambda: services.enrollments.create(
            user_id=str(form.get("user_id", "")),
            email=str(form.get("email", "")).strip(),
            display_name=str(form.get("display_name", "")).strip() or None,
            profile=chosen_key_profile(form),
            now=services.now(),
            actor=Actor.officer(officer.id),
        )
    )
    qr = segno.make(invitation.enrollment_url, error="m").svg_inline(scale=5, border=2)
    return console_page(
        request,
        "officer/enrollment_created.html",
        officer,
        invitation=invitation,
        # segno's own markup: an SVG of black modules, no text from the request.
        qr=Markup(qr),  # noqa: S704
    )


async def enrollment_detail(request: Request) -> Response:
    """GET /officer/enrollments/{enrollment_id}"""
    officer = await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    services = app_context(request).services
    enrollment_id = request.path_params["enrollment_id"]

    def load() -> tuple[object, list[object]]:
        with services.engine.connect() as connection:
            row = enrollment_by_id(connection, enrollment_id)
            if row is None:
                raise EnrollmentNotFoundError(enrollment_id)
            return row, list(certificates_of_enrollment(connection, enrollment_id))

    row, certificates = await run_in_threadpool(load)
    return console_page(
        request,
        "officer/enrollment.html",
        officer,
        enrollment=row,
        certificates=certificates,
        reasons=list(RevocationReason),
    )


async def enrollment_action(request: Request) -> Response:
    """POST /officer/enrollments/{enrollment_id}/{action}: unlock, cancel, reissue, renew or
    resend the mail of the current step."""
    officer = await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    action = request.path_params["action"]
    if action not in _ACTIONS:
        raise HTTPException(404)
    await confirmed_form(request, officer)
    services = app_context(request).services
    enrollment_id = request.path_params["enrollment_id"]
    method = getattr(services.enrollment_administration, action)
    await run_in_threadpool(
        lambda: method(enrollment_id, now=services.now(), actor=Actor.officer(officer.id))
    )
    return RedirectResponse(f"/officer/enrollments/{enrollment_id}", status_code=303)


async def revoke_certificate(request: Request) -> Response:
    """POST /officer/certificates/{serial}/revoke"""
    officer = await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    form = await confirmed_form(request, officer)
    services = app_context(request).services
    revoked = await run_in_threadpool(
        lambda: revocation.revoke(
            services.engine,
            issuer_id=services.issuing.id,
            serial=request.path_params["serial"],
            reason=str(form.get("reason", RevocationReason.UNSPECIFIED)),
            now=services.now(),
            actor=Actor.officer(officer.id),
        )
    )
    target = (
        f"/officer/enrollments/{revoked.enrollment_id}" if revoked.enrollment_id else "/officer/"
    )
    return RedirectResponse(target, status_code=303)


async def certificate_list(request: Request) -> Response:
    """GET /officer/certificates?status=&q=: end-user certificates, newest first."""
    officer = await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    services = app_context(request).services
    status = word_of(CertificateStatus, request.query_params.get("status"))
    text = (request.query_params.get("q") or "").strip()[:200] or None

    def search() -> list[object]:
        with services.engine.connect() as connection:
            return list(search_certificates(connection, status=status, text=text))

    rows = await run_in_threadpool(search)
    return console_page(
        request,
        "officer/certificates.html",
        officer,
        certificates=rows,
        statuses=list(CertificateStatus),
        status=status,
        q=text or "",
    )


async def certificate_pem(request: Request) -> Response:
    """GET /officer/certificates/{serial}.pem: the certificate only (keys are never kept)."""
    await officer_for(request, Permission.MANAGE_ENROLLMENTS)
    services = app_context(request).services
    serial = request.path_params["serial"].lower()

    def load() -> bytes | None:
        with services.engine.connect() as connection:
            return certificate_by_serial(connection, services.issuing.id, serial)

    der = await run_in_threadpool(load)
    if der is None:
        raise HTTPException(404)
    pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
    return Response(
        pem,
        media_type="application/x-pem-file",
        headers={"content-disposition": f'attachment; filename="{serial}.pem"'},
    )


routes = [
    Route("/officer/enrollments", enrollment_list, methods=["GET", "HEAD"]),
    Route("/officer/enrollments", create_enrollment, methods=["POST"]),
    Route("/officer/enrollments/new", new_enrollment, methods=["GET", "HEAD"]),
    Route("/officer/enrollments/{enrollment_id}", enrollment_detail, methods=["GET", "HEAD"]),
    Route("/officer/enrollments/{enrollment_id}/{action}", enrollment_action, methods=["POST"]),
    Route("/officer/certificates", certificate_list, methods=["GET", "HEAD"]),
    Route("/officer/certificates/{serial}/revoke", revoke_certificate, methods=["POST"]),
    Route("/officer/certificates/{serial:str}.pem", certificate_pem, methods=["GET"]),
]
