"""The operations of the relying-site API: thin handlers that parse, call the domain in a
thread, and render."""

from __future__ import annotations

from importlib.metadata import version

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from pwa_server.enrollment.site_enrollments import EnrollmentRequest, SiteEnrollments
from pwa_server.notify.outbox import OutboxMessage
from pwa_server.runtime import Services
from pwa_server.sites.webhook_delivery import error_class, list_deliveries
from pwa_server.store.certificates import SiteCertificateRow
from pwa_server.store.enrollments import EnrollmentRow
from pwa_server.vocabulary import DeliveryState
from pwa_server.web.api import operations as api
from pwa_server.web.api.openapi import document
from pwa_server.web.api.operations import Answer, ApiCall, Operation, Parameter
from pwa_server.web.api.schemas import (
    AssertionToVerify,
    Certificate,
    CertificateList,
    CreatedEnrollment,
    Enrollment,
    JsonWebKeySet,
    NewEnrollment,
    OpenApiDocument,
    Problem,
    Revocation,
    VerifiedAssertion,
    WebhookDelivery,
    WebhookDeliveryList,
)

_ENROLLMENT_ID = Parameter(
    "enrollment_id",
    "path",
    {"type": "string", "minLength": 1, "maxLength": 64},
    "The enrollment's id (the last part of its enrollment URL)",
)
_SERIAL = Parameter(
    "serial",
    "path",
    {"type": "string", "pattern": "^[0-9a-fA-F]{1,40}$"},
    "The certificate's serial number in hexadecimal",
)
_USER_ID = Parameter(
    "user_id", "path", {"type": "string", "minLength": 1, "maxLength": 255}, "The site's user id"
)
_IDEMPOTENCY_KEY = Parameter(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "Makes a retry return the enrollment made the first time (with a fresh one-time "
    "password) instead of a second enrollment; remembered for 24 hours",
    required=False,
)

# The refusals every authenticated operation may answer with.
_REFUSALS: dict[int, tuple[str, type[BaseModel] | None]] = {
    400: ("The body is not JSON", Problem),
    401: ("No API key, or one that is unknown or revoked", Problem),
    413: ("The body is too large", Problem),
    422: ("The request is not valid", Problem),
    429: ("Too many requests for this API key; see Retry-After", Problem),
}
_ENROLLMENT_REFUSALS: dict[int, tuple[str, type[BaseModel] | None]] = {
    404: ("No such enrollment of this site", Problem),
    409: ("The enrollment is not in a state that allows this", Problem),
    410: ("The enrollment expired or was cancelled", Problem),
    423: ("The enrollment is locked", Problem),
}


def _site_enrollments(services: Services) -> SiteEnrollments:
    return SiteEnrollments(
        services.engine,
        services.enrollments,
        services.enrollment_administration,
        issuer_id=services.issuing.id,
    )


def _enrollment(row: EnrollmentRow) -> Enrollment:
    return Enrollment.model_validate(row, from_attributes=True)


def _certificate(row: SiteCertificateRow) -> Certificate:
    pem = x509.load_der_x509_certificate(row.certificate_der).public_bytes(Encoding.PEM)
    return Certificate.model_validate(
        {**row.__dict__, "certificate_pem": pem.decode("ascii")}, from_attributes=False
    )


async def create_enrollment(call: ApiCall) -> Answer:
    """POST /enrollments"""
    body = call.body_as(NewEnrollment)
    created = await run_in_threadpool(
        _site_enrollments(call.services).create,
        call.caller,
        EnrollmentRequest(**body.model_dump()),
        idempotency_key=call.headers.get("idempotency-key"),
        now=call.now,
    )
    result = CreatedEnrollment(
        **_enrollment(created.enrollment).model_dump(),
        enrollment_url=created.invitation.enrollment_url,
        one_time_password=created.invitation.one_time_password,
    )
    if created.replayed:
        return Answer(200, result, {"idempotent-replayed": "true"})
    return Answer(201, result, {"location": f"{api.PREFIX}/enrollments/{result.id}"})


async def get_enrollment(call: ApiCall) -> Answer:
    """GET /enrollments/{enrollment_id}"""
    row = await run_in_threadpool(
        _site_enrollments(call.services).enrollment, call.caller, call.path["enrollment_id"]
    )
    return Answer(200, _enrollment(row))


def _enrollment_action(name: str) -> api.Handler:
    async def action(call: ApiCall) -> Answer:
        method = getattr(_site_enrollments(call.services), name)
        row = await run_in_threadpool(method, call.caller, call.path["enrollment_id"], now=call.now)
        return Answer(200, _enrollment(row))

    return action


async def list_certificates(call: ApiCall) -> Answer:
    """GET /users/{user_id}/certificates"""
    rows = await run_in_threadpool(
        _site_enrollments(call.services).certificates, call.caller, call.path["user_id"]
    )
    return Answer(200, CertificateList(certificates=[_certificate(row) for row in rows]))


async def revoke_certificate(call: ApiCall) -> Answer:
    """POST /certificates/{serial}/revoke"""
    body = call.body_as(Revocation)
    row = await run_in_threadpool(
        _site_enrollments(call.services).revoke,
        call.caller,
        call.path["serial"],
        reason=body.reason,
        now=call.now,
    )
    return Answer(200, _certificate(row))


async def list_webhook_deliveries(call: ApiCall) -> Answer:
    """GET /webhook-deliveries"""
    messages = await run_in_threadpool(
        list_deliveries, call.services.engine, site_id=call.caller.id
    )
    return Answer(200, WebhookDeliveryList(deliveries=[_delivery(message) for message in messages]))


def _delivery(message: OutboxMessage) -> WebhookDelivery:
    return WebhookDelivery(
        id=message.id,
        event=message.subject or "",
        url=message.destination,
        state=message.state,
        created_at=message.created_at,
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at if message.state is DeliveryState.PENDING else None,
        delivered_at=message.delivered_at,
        last_error=error_class(message.last_error),
    )


async def assertion_keys(call: ApiCall) -> Answer:
    """GET /assertion-keys"""
    return Answer(200, call.services.assertions.jwks())


async def verify_assertion(call: ApiCall) -> Answer:
    """POST /assertions/verify"""
    body = call.body_as(AssertionToVerify)
    claims = await run_in_threadpool(
        call.services.assertions.verify_and_redeem,
        call.services.engine,
        body.assertion,
        site_name=call.caller.name,
        now=call.now,
    )
    return Answer(
        200,
        VerifiedAssertion(
            user_id=claims.user_id,
            certificate_user_id=claims.certificate_user_id,
            serial=claims.serial,
            certificate_sha256=claims.certificate_sha256,
            issued_at=claims.issued_at,
            expires_at=claims.expires_at,
            jti=claims.jti,
        ),
    )


_ENROLLMENT_ACTIONS = {
    "reissue": "Reissue: mail the download guide again and open a new download window",
    "unlock": "Unlock an enrollment locked by too many wrong secrets",
    "cancel": "Cancel an enrollment: its link stops working",
}

OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/enrollments",
        "createEnrollment",
        "Invite a user: returns the enrollment URL and the one-time password (shown once)",
        create_enrollment,
        {
            201: ("Created", CreatedEnrollment),
            200: (
                "A retry with the same Idempotency-Key: the same enrollment, a fresh one-time "
                "password (the first one stops working)",
                CreatedEnrollment,
            ),
            **_REFUSALS,
            409: ("The Idempotency-Key's enrollment was already used", Problem),
            410: ("The Idempotency-Key's enrollment expired or was cancelled", Problem),
            423: ("The Idempotency-Key's enrollment is locked", Problem),
        },
        body=NewEnrollment,
        parameters=(_IDEMPOTENCY_KEY,),
        tags=("enrollments",),
    ),
    Operation(
        "GET",
        "/enrollments/{enrollment_id}",
        "getEnrollment",
        "Where an enrollment stands",
        get_enrollment,
        {200: ("The enrollment", Enrollment), **_REFUSALS, 404: _ENROLLMENT_REFUSALS[404]},
        parameters=(_ENROLLMENT_ID,),
        tags=("enrollments",),
    ),
    *(
        Operation(
            "POST",
            f"/enrollments/{{enrollment_id}}/{name}",
            f"{name}Enrollment",
            summary,
            _enrollment_action(name),
            {200: ("The enrollment afterwards", Enrollment), **_REFUSALS, **_ENROLLMENT_REFUSALS},
            parameters=(_ENROLLMENT_ID,),
            tags=("enrollments",),
        )
        for name, summary in _ENROLLMENT_ACTIONS.items()
    ),
    Operation(
        "GET",
        "/users/{user_id}/certificates",
        "listUserCertificates",
        "The certificates issued for one of the site's users, newest first",
        list_certificates,
        {200: ("The certificates", CertificateList), **_REFUSALS},
        parameters=(_USER_ID,),
        route_path="/users/{user_id:path}/certificates",
        tags=("certificates",),
    ),
    Operation(
        "POST",
        "/certificates/{serial}/revoke",
        "revokeCertificate",
        "Revoke a certificate with an RFC 5280 reason; CRL and OCSP show it at once",
        revoke_certificate,
        {
            200: ("The revoked certificate", Certificate),
            **_REFUSALS,
            404: ("No such certificate of this site", Problem),
            409: ("The certificate is already revoked", Problem),
        },
        body=Revocation,
        parameters=(_SERIAL,),
        tags=("certificates",),
    ),
    Operation(
        "POST",
        "/assertions/verify",
        "verifyAssertion",
        "Verify and redeem a return assertion (each one once): who came back, with which "
        "certificate",
        verify_assertion,
        {
            200: ("Valid; now redeemed", VerifiedAssertion),
            **_REFUSALS,
            409: ("Redeemed before", Problem),
        },
        body=AssertionToVerify,
        tags=("return to the site",),
    ),
    Operation(
        "GET",
        "/assertion-keys",
        "getAssertionKeys",
        "The public keys that sign return assertions (JWKS), for verifying them without a call",
        assertion_keys,
        {200: ("The key set", JsonWebKeySet)},
        public=True,
        tags=("return to the site",),
        media_type="application/jwk-set+json",
        cache_control="public, max-age=300",
    ),
    Operation(
        "GET",
        "/webhook-deliveries",
        "listWebhookDeliveries",
        "The site's latest 50 webhook events and how their delivery went, newest first",
        list_webhook_deliveries,
        {200: ("The deliveries", WebhookDeliveryList), **_REFUSALS},
        tags=("webhooks",),
    ),
]


def api_routes(services: Services) -> list[Route]:
    """The API's routes, the OpenAPI document among them, over one process's services."""
    openapi: dict[str, object] = {}

    async def openapi_document(call: ApiCall) -> Answer:
        """GET /openapi.json"""
        return Answer(200, openapi)

    described = [
        *OPERATIONS,
        Operation(
            "GET",
            "/openapi.json",
            "getOpenApiDocument",
            "This document",
            openapi_document,
            {200: ("The OpenAPI 3.1 document", OpenApiDocument)},
            public=True,
            tags=("meta",),
            cache_control="public, max-age=300",
        ),
    ]
    openapi.update(
        document(
            described,
            server_url=services.settings.effective_public_url,
            version=version("shomei"),
        )
    )
    return api.routes(described, services)
