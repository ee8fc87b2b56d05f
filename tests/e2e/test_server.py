"""The real server over TLS on loopback: health, CA downloads, concurrency, restart."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from pwa_server.enrollment.download import Platform
from pwa_server.pki.ocsp import STATUS_RECHECK
from pwa_server.runtime import Services
from testbed.serving import ShomeiServer
from tests.conftest import ca_public_key, openssl


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


def test_the_check_listener_serves_the_installation_check_only(server: ShomeiServer) -> None:
    with server.client() as client:
        check = client.get(f"{server.check_url}/check")
        refused = [
            client.get(f"{server.check_url}{path}").status_code
            for path in ("/officer/sign-in", "/enroll/anything", "/api/v1/openapi.json", "/reissue")
        ]
        home = client.get(f"{server.check_url}/")
    assert check.status_code == 200
    assert refused == [404] * 4
    assert home.status_code == 303
    assert home.headers["location"] == f"{server.settings.effective_public_url}/"


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


def test_only_the_tls_listeners_write_access_log_lines(server: ShomeiServer) -> None:
    """Relying parties' servers poll OCSP and CRLs over plain HTTP thousands of times a
    second: those requests are not logged one by one."""
    probe = secrets.token_hex(8)
    with httpx.Client(timeout=30) as plain, server.client() as tls:
        plain.get(f"http://localhost:{server.settings.http_port}/pki/issuing.crt?plain={probe}")
        tls.get(f"{server.base_url}/healthz?tls={probe}")
    deadline = time.monotonic() + 10
    while f"tls={probe}" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log.read_text()
    assert f"tls={probe}" in log
    assert f"plain={probe}" not in log


def test_the_access_log_keeps_no_secret_or_personal_path_segment(server: ShomeiServer) -> None:
    """Invitation tokens open the console, enrollment ids are the secret of enrollment links,
    user ids name people: none of them reaches the log, from any listener."""
    secret = secrets.token_hex(12)
    paths = [
        f"/enroll/{secret}",
        f"/enroll/{secret}/secret?lang=ja",
        f"/officer/register/{secret}",
        f"/officer/enrollments/{secret}",
        f"/api/v1/enrollments/{secret}",
        f"/api/v1/enrollments/{secret}/cancel",
        f"/api/v1/users/{secret}%2Fx/certificates",
        f"/officer/enrollments?status=ready&q={secret}",
        f"/officer/audit?subject={secret}",
    ]
    with server.client() as client:
        for path in paths:
            client.get(f"{server.base_url}{path}")
            client.get(f"{server.check_url}{path}")
        client.get(f"{server.base_url}/healthz?after={secret[::-1]}")
    deadline = time.monotonic() + 10
    while secret[::-1] not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log.read_text()
    assert "/officer/register/…" in log
    assert "/api/v1/users/…/certificates" in log
    assert secret not in log


def test_the_crl_and_issuer_an_issued_certificate_names_are_served_over_plain_http(
    server: ShomeiServer, services: Services
) -> None:
    leaf = x509.load_pem_x509_certificates((server.settings.tls_dir / "server.pem").read_bytes())[0]
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    access = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    [issuer_url] = [
        item.access_location.value
        for item in access
        if item.access_method == AuthorityInformationAccessOID.CA_ISSUERS
    ]
    with httpx.Client(timeout=30) as client:
        crl = client.get(points[0].full_name[0].value)
        issuer = client.get(issuer_url)
    assert crl.status_code == 200
    assert x509.load_der_x509_crl(crl.content).is_signature_valid(
        ca_public_key(services.issuing.certificate)
    )
    assert issuer.status_code == 200
    assert x509.load_der_x509_certificate(issuer.content) == services.issuing.certificate


def test_plain_http_serves_nothing_but_pki(server: ShomeiServer) -> None:
    base = f"http://localhost:{server.settings.http_port}"
    with httpx.Client(timeout=30) as client:
        for path in ("/", "/download", "/healthz", "/enroll/x"):
            assert client.get(f"{base}{path}").status_code == 404


def _enrolled_certificate(services: Services, user: str) -> tuple[x509.Certificate, str]:
    """A certificate through the real enrollment path, on the database the server uses."""
    now = dt.datetime.now(dt.UTC)
    invitation = services.enrollments.create(user_id=user, email=f"{user}@example.jp", now=now)
    services.enrollments.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=now
    )
    issued = services.enrollments.register_secret(
        invitation.enrollment_id,
        question="first-pet",
        answer="Pochi",
        answer_confirm="Pochi",
        now=now,
    )
    content = services.downloads.download(
        certificate_user_id=issued.certificate_user_id,
        download_password=issued.download_password,
        platform=Platform.ANDROID,
        now=now,
    ).content
    _, certificate, _ = pkcs12.load_key_and_certificates(content, issued.download_password.encode())
    assert certificate is not None
    return certificate, issued.certificate_user_id


def _supersede(services: Services, cuid: str) -> None:
    """Reissue and download again: the user's previous certificate is revoked (superseded)."""
    now = dt.datetime.now(dt.UTC)
    reissued = services.enrollments.reissue_with_secret_answer(cuid, "pochi", now=now)
    services.downloads.download(
        certificate_user_id=cuid,
        download_password=reissued.download_password,
        platform=Platform.ANDROID,
        now=now,
    )


def _openssl_ocsp(server: ShomeiServer, certificate: x509.Certificate, tmp_path: Path) -> str:
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(certificate.public_bytes(Encoding.PEM))
    chain = Path(server.ca_bundle)
    issuing = tmp_path / "issuing.pem"
    issuing.write_bytes(
        x509.load_pem_x509_certificates(chain.read_bytes())[1].public_bytes(Encoding.PEM)
    )
    result = openssl(
        "ocsp",
        "-issuer",
        issuing,
        "-CAfile",
        chain,
        "-cert",
        leaf,
        "-url",
        f"http://localhost:{server.settings.http_port}/pki/ocsp",
    )
    assert "Response verify OK" in result.stderr, result.stdout + result.stderr
    return result.stdout


def test_openssl_ocsp_says_good_then_revoked_after_a_reissue(
    server: ShomeiServer, services: Services, tmp_path: Path
) -> None:
    certificate, cuid = _enrolled_certificate(services, "ocsp-user")
    assert ": good" in _openssl_ocsp(server, certificate, tmp_path)

    _supersede(services, cuid)
    assert ": revoked" in _openssl_ocsp(server, certificate, tmp_path)


def _ocsp_get_url(server: ShomeiServer, services: Services, certificate: x509.Certificate) -> str:
    """RFC 6960 A.1: the request, without nonce, in the URL (as TLS servers send them)."""
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, services.issuing.certificate, hashes.SHA1())  # noqa: S303
        .build()
        .public_bytes(Encoding.DER)
    )
    encoded = quote(base64.b64encode(request).decode(), safe="")
    return f"http://localhost:{server.settings.http_port}/pki/ocsp/{encoded}"


def test_ocsp_answers_get_requests_too(server: ShomeiServer, services: Services) -> None:
    certificate, _ = _enrolled_certificate(services, "ocsp-get-user")
    with httpx.Client(timeout=30) as client:
        answer = client.get(_ocsp_get_url(server, services, certificate))
    assert answer.headers["content-type"] == "application/ocsp-response"
    response = ocsp.load_der_ocsp_response(answer.content)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_a_repeated_ocsp_get_gets_the_same_response_and_headers(
    server: ShomeiServer, services: Services
) -> None:
    certificate, _ = _enrolled_certificate(services, "ocsp-repeat-user")
    url = _ocsp_get_url(server, services, certificate)
    with httpx.Client(timeout=30) as client:
        # Enough requests for each worker to answer some from memory.
        answers = [client.get(url) for _ in range(20)]
    assert {answer.content for answer in answers} == {answers[0].content}
    headers = [{k: v for k, v in a.headers.items() if k != "date"} for a in answers]
    assert all(each == headers[0] for each in headers)
    assert headers[0]["cache-control"] == "no-cache"
    assert "content-security-policy" in headers[0]


def test_a_revocation_shows_in_ocsp_get_answers_after_the_status_recheck(
    server: ShomeiServer, services: Services
) -> None:
    certificate, cuid = _enrolled_certificate(services, "ocsp-recheck-user")
    url = _ocsp_get_url(server, services, certificate)
    with httpx.Client(timeout=30) as client:
        before = [ocsp.load_der_ocsp_response(client.get(url).content) for _ in range(10)]
        assert {r.certificate_status for r in before} == {ocsp.OCSPCertStatus.GOOD}
        _supersede(services, cuid)
        time.sleep(STATUS_RECHECK.total_seconds())
        after = [ocsp.load_der_ocsp_response(client.get(url).content) for _ in range(10)]
    assert {r.certificate_status for r in after} == {ocsp.OCSPCertStatus.REVOKED}
