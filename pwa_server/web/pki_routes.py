"""/pki/*: the CA certificates, for phones, browsers and relying parties to download."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pwa_server.pki.authority import Authority, fingerprint
from pwa_server.pki.crl import MEDIA_TYPE as CRL_MEDIA_TYPE
from pwa_server.pki.crl import current_crl
from pwa_server.pki.ocsp import MEDIA_TYPE as OCSP_MEDIA_TYPE
from pwa_server.vocabulary import AuthorityRole
from pwa_server.web.context import app_context

_FORMATS = {
    "crt": (Encoding.DER, "application/x-x509-ca-cert"),
    "pem": (Encoding.PEM, "application/x-pem-file"),
}


def _ca_endpoint(role: AuthorityRole, file_format: str) -> Callable[[Request], Awaitable[Response]]:
    encoding, media_type = _FORMATS[file_format]

    async def ca_certificate(request: Request) -> Response:
        """The root or issuing CA certificate, DER (.crt) or PEM (.pem)."""
        services = app_context(request).services
        authority = services.root if role == AuthorityRole.ROOT else services.issuing
        return Response(
            authority.certificate.public_bytes(encoding),
            media_type=media_type,
            headers={
                "content-disposition": f'attachment; filename="shomei-{role}.{file_format}"',
                "cache-control": "public, max-age=3600",
                "etag": f'"{fingerprint(authority.certificate)}"',
            },
        )

    return ca_certificate


def _crl_endpoint(role: AuthorityRole) -> Callable[[Request], Awaitable[Response]]:
    async def crl(request: Request) -> Response:
        """The CA's CRL (DER), signed anew after a revocation or before nextUpdate. The root's
        lists revoked issuing CAs: verifiers that check every certificate of the chain
        against a CRL (nginx's ssl_crl, OpenSSL's -crl_check_all) need it."""
        services = app_context(request).services
        authority = services.root if role == AuthorityRole.ROOT else services.issuing
        der = await run_in_threadpool(current_crl, services.engine, authority, now=services.now())
        return Response(
            der, media_type=CRL_MEDIA_TYPE, headers={"cache-control": "public, max-age=60"}
        )

    return crl


_MAX_REQUEST = 4096  # an OCSP request for one certificate is ~100 bytes; refuse anything huge
OCSP_GET_PREFIX = "/pki/ocsp/"
# Responses carry their own validity (thisUpdate, nextUpdate); HTTP caches must not add theirs.
OCSP_HEADERS = {"cache-control": "no-cache"}


async def ocsp_post(request: Request) -> Response:
    """RFC 6960 A.1: the DER request in the body (BodyLimitMiddleware bounds its size)."""
    return await _ocsp(request, await request.body())


def ocsp_request_in_path(encoded: str) -> bytes:
    """RFC 6960 A.1: the DER request from the base64, URL-encoded, that follows OCSP_GET_PREFIX
    (empty, which the responder calls malformed, when it is not base64)."""
    try:
        return base64.b64decode(unquote(encoded), validate=True)[:_MAX_REQUEST]
    except (binascii.Error, ValueError):
        return b""


async def ocsp_get(request: Request) -> Response:
    """RFC 6960 A.1: the base64 of the DER request, URL-encoded, in the path."""
    return await _ocsp(request, ocsp_request_in_path(request.path_params["request"]))


async def _ocsp(request: Request, body: bytes) -> Response:
    services = app_context(request).services
    der = await run_in_threadpool(services.ocsp.respond, body, now=services.now())
    return Response(der, media_type=OCSP_MEDIA_TYPE, headers=OCSP_HEADERS)


def _generation(request: Request) -> Authority:
    """The issuing CA named by /pki/ca/{id}.*: one still in use, else 404."""
    services = app_context(request).services
    wanted = request.path_params["authority_id"]
    for issuer in services.issuers:
        if issuer.id == wanted:
            return issuer
    raise HTTPException(404)


async def generation_crl(request: Request) -> Response:
    """/pki/ca/{id}.crl: the CRL of that issuing CA, as its certificates' CDP names it."""
    services = app_context(request).services
    authority = _generation(request)
    der = await run_in_threadpool(current_crl, services.engine, authority, now=services.now())
    return Response(der, media_type=CRL_MEDIA_TYPE, headers={"cache-control": "public, max-age=60"})


async def generation_certificate(request: Request) -> Response:
    """/pki/ca/{id}.crt: that issuing CA's certificate (DER), as AIA caIssuers names it."""
    authority = _generation(request)
    return Response(
        authority.certificate.public_bytes(Encoding.DER),
        media_type="application/pkix-cert",
        headers={"cache-control": "public, max-age=3600"},
    )


async def all_crls_pem(request: Request) -> Response:
    """/pki/crls.pem: the root's CRL and those of every issuing CA still in use, in PEM, one
    file: what nginx's ssl_crl needs (a CRL for every CA of the chain, also after a key
    ceremony retired an issuing CA)."""
    services = app_context(request).services
    now = services.now()

    def collect() -> bytes:
        return b"".join(
            x509.load_der_x509_crl(current_crl(services.engine, authority, now=now)).public_bytes(
                Encoding.PEM
            )
            for authority in (services.root, *services.issuers)
        )

    pem = await run_in_threadpool(collect)
    return Response(
        pem, media_type="application/x-pem-file", headers={"cache-control": "public, max-age=60"}
    )


routes = [
    Route("/pki/crls.pem", all_crls_pem, methods=["GET", "HEAD"]),
    Route("/pki/ca/{authority_id:int}.crl", generation_crl, methods=["GET", "HEAD"]),
    Route("/pki/ca/{authority_id:int}.crt", generation_certificate, methods=["GET", "HEAD"]),
    Route("/pki/ocsp", ocsp_post, methods=["POST"]),
    Route(OCSP_GET_PREFIX + "{request:path}", ocsp_get, methods=["GET"]),
    *(
        Route(
            f"/pki/{role}.{file_format}", _ca_endpoint(role, file_format), methods=["GET", "HEAD"]
        )
        for role in (AuthorityRole.ROOT, AuthorityRole.ISSUING)
        for file_format in _FORMATS
    ),
    *(
        Route(f"/pki/{role}.crl", _crl_endpoint(role), methods=["GET", "HEAD"])
        for role in (AuthorityRole.ROOT, AuthorityRole.ISSUING)
    ),
]
