"""Client certificates relayed by a trusted TLS proxy, and ignored from anyone else."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pwa_server.web.middleware.proxy_tls import TrustedProxyTlsMiddleware

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
RELAYED = {"X-SSL-Client-Cert": quote(PEM), "X-SSL-Client-Verify": "SUCCESS"}


async def seen(request: Request) -> JSONResponse:
    """What the application sees: the TLS extension and any proxy headers left over."""
    return JSONResponse(
        {
            "tls": request.scope.get("extensions", {}).get("tls"),
            "leftover": [k for k in request.headers if k.startswith("x-ssl-")],
            "client": request.client.host if request.client else None,
        }
    )


def client_from(address: str, trusted: list[str]) -> TestClient:
    app = Starlette(routes=[Route("/", seen)])
    return TestClient(TrustedProxyTlsMiddleware(app, trusted=trusted), client=(address, 40000))


def seen_by_app(address: str, trusted: list[str], headers: dict[str, str]) -> dict[str, Any]:
    with client_from(address, trusted) as client:
        result: dict[str, Any] = client.get("/", headers=headers).json()
    return result


def test_trusted_proxy_certificate_becomes_the_tls_extension() -> None:
    seen = seen_by_app("10.1.2.3", ["10.1.2.0/24"], RELAYED)
    assert seen["tls"]["client_cert_chain"] == [PEM]
    assert seen["tls"]["client_cert_error"] is None
    assert seen["leftover"] == []


def test_proxy_headers_from_an_untrusted_address_are_dropped() -> None:
    seen = seen_by_app("192.0.2.7", ["10.1.2.0/24"], RELAYED)
    assert seen["tls"] is None
    assert seen["leftover"] == []


def test_proxy_headers_are_dropped_when_no_proxy_is_configured() -> None:
    seen = seen_by_app("127.0.0.1", [], RELAYED)
    assert seen["tls"] is None


def test_failed_proxy_verification_is_passed_on_as_the_error() -> None:
    headers = {**RELAYED, "X-SSL-Client-Verify": "FAILED:unable to get issuer certificate"}
    seen = seen_by_app("127.0.0.1", ["127.0.0.1"], headers)
    assert seen["tls"]["client_cert_chain"] == [PEM]
    assert seen["tls"]["client_cert_error"] == "FAILED:unable to get issuer certificate"


def test_trusted_proxy_without_a_certificate_gives_an_empty_chain() -> None:
    seen = seen_by_app("127.0.0.1", ["127.0.0.1"], {"X-SSL-Client-Verify": "NONE"})
    assert seen["tls"]["client_cert_chain"] == []


def test_a_trusted_proxys_last_forwarded_address_becomes_the_client() -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.4"}
    assert seen_by_app("10.1.2.3", ["10.1.2.0/24"], forwarded)["client"] == "198.51.100.4"


def test_a_forwarded_address_from_anyone_else_is_ignored() -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.4"}
    assert seen_by_app("192.0.2.7", ["10.1.2.0/24"], forwarded)["client"] == "192.0.2.7"
