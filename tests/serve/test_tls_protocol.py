"""The uvicorn protocol that hands client certificates to the app through the TLS extension."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import ssl
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.pki.tls_identity import TlsFiles
from pwa_server.runtime import Services
from pwa_server.serve.client_auth_context import client_certificate_context
from pwa_server.serve.tls_protocol import ClientCertH11Protocol
from testbed.serving import free_port

ROOT = Path(__file__).resolve().parents[2]


async def echo_tls_extension(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the TLS extension the application saw."""
    tls = scope.get("extensions", {}).get("tls")
    body = httpx.Response(200, json={"tls": tls}).content
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def listener(services: Services) -> Iterator[str]:
    """uvicorn with our protocol and optional client-certificate verification, on loopback."""
    files = TlsFiles(services.settings.tls_dir)
    port = free_port()
    config = uvicorn.Config(
        echo_tls_extension,
        host="127.0.0.1",
        port=port,
        http=ClientCertH11Protocol,
        lifespan="off",
        ssl_context_factory=lambda _config, _default: client_certificate_context(
            files.certificate_chain, files.private_key, files.client_ca_bundle
        ),
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"https://localhost:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def client_certificate(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, x509.Certificate]:
    """A client certificate from our issuing CA, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    with services.engine.begin() as connection:
        certificate, _ = issue(
            connection,
            services.issuing,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls-protocol-test")]),
            public_key=key.public_key(),
            profile=CertificateProfile.CLIENT,
            now=dt.datetime.now(dt.UTC),
            lifetime=dt.timedelta(days=1),
        )
    directory = tmp_path_factory.mktemp("client")
    cert_file, key_file = directory / "client.pem", directory / "client.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, certificate


def _get(url: str, services: Services, cert: tuple[Path, Path] | None) -> dict[str, Any]:
    context = ssl.create_default_context(
        cafile=TlsFiles(services.settings.tls_dir).client_ca_bundle
    )
    if cert is not None:
        context.load_cert_chain(*cert)
    with httpx.Client(verify=context) as client:
        result: dict[str, Any] = client.get(url).json()
    return result


def test_client_certificate_reaches_the_app_as_pem(
    listener: str,
    services: Services,
    client_certificate: tuple[Path, Path, x509.Certificate],
) -> None:
    cert_file, key_file, certificate = client_certificate
    tls = _get(listener, services, (cert_file, key_file))["tls"]
    assert len(tls["client_cert_chain"]) == 1
    assert x509.load_pem_x509_certificate(tls["client_cert_chain"][0].encode()) == certificate
    assert tls["tls_version"] in (0x0303, 0x0304)


def test_connection_without_certificate_gets_an_empty_chain(
    listener: str, services: Services
) -> None:
    tls = _get(listener, services, None)["tls"]
    assert tls["client_cert_chain"] == []


def test_a_foreign_self_signed_certificate_reaches_the_app_instead_of_failing_the_handshake(
    listener: str, services: Services, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "foreign")])
    now = dt.datetime.now(dt.UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=3))
        .not_valid_after(now - dt.timedelta(days=1))  # expired as well
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "foreign.pem", tmp_path / "foreign.key"
    cert_file.write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls = _get(listener, services, (cert_file, key_file))["tls"]
    assert x509.load_pem_x509_certificate(tls["client_cert_chain"][0].encode()) == foreign


def test_uvicorn_is_the_pinned_version_the_protocol_was_written_for() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("uvicorn")]
    assert pins == ["uvicorn==0.54.0"]
    assert importlib.metadata.version("uvicorn") == "0.54.0"
