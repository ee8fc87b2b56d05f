"""The real server over TLS on loopback: health, CA downloads, concurrency, restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pwa_server.runtime import Services
from tests.conftest import ShomeiServer


def test_healthz_reports_database_and_token(server: ShomeiServer) -> None:
    with server.client() as client:
        response = client.get(f"{server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "hsm": "ok"}


def test_ca_certificates_are_served_in_der_and_pem(
    server: ShomeiServer, services: Services
) -> None:
    with server.client() as client:
        for role, authority in (("root", services.root), ("issuing", services.issuing)):
            der = client.get(f"{server.base_url}/pki/{role}.crt")
            pem = client.get(f"{server.base_url}/pki/{role}.pem")
            assert der.headers["content-type"] == "application/x-x509-ca-cert"
            assert der.content == authority.certificate.public_bytes(Encoding.DER)
            assert x509.load_pem_x509_certificate(pem.content) == authority.certificate


def test_fifty_concurrent_signing_requests_all_succeed(server: ShomeiServer) -> None:
    # Every /healthz signs a fresh challenge with the issuing CA key in the token and verifies
    # the signature against the CA certificate before answering "hsm": "ok".
    with server.client(limits=httpx.Limits(max_connections=50)) as client:

        def probe(_: int) -> httpx.Response:
            return client.get(f"{server.base_url}/healthz")

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(probe, range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert all(r.json()["hsm"] == "ok" for r in responses)


def test_check_listener_accepts_a_connection_without_client_certificate(
    server: ShomeiServer,
) -> None:
    with server.client() as client:
        assert client.get(f"{server.check_url}/healthz").status_code == 200


def test_listeners_do_not_tell_their_software(server: ShomeiServer) -> None:
    with server.client() as client:
        assert "server" not in client.get(f"{server.base_url}/healthz").headers


def test_crl_and_ca_certificates_are_served_over_plain_http(
    server: ShomeiServer, services: Services
) -> None:
    base = f"http://localhost:{server.settings.http_port}"
    with httpx.Client(timeout=30) as client:
        crl = client.get(f"{base}/pki/issuing.crl")
        root = client.get(f"{base}/pki/root.pem")
    assert crl.status_code == 200
    assert crl.headers["content-type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(crl.content).issuer == services.issuing.certificate.subject
    assert root.status_code == 200


def test_plain_http_serves_nothing_but_pki(server: ShomeiServer) -> None:
    base = f"http://localhost:{server.settings.http_port}"
    with httpx.Client(timeout=30) as client:
        for path in ("/", "/download", "/healthz", "/enroll/x"):
            assert client.get(f"{base}{path}").status_code == 404
