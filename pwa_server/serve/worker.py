"""One worker process: the token and database opened, one uvicorn server per listener, and
the background loops beside them, until told to stop."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import uvicorn
import uvloop
from cryptography import x509

from pwa_server.pki.tls_identity import TlsFiles, write_client_ca_bundle
from pwa_server.runtime import Services, open_services
from pwa_server.serve.access_log import redact_handlers
from pwa_server.serve.background import start_background_loops
from pwa_server.serve.bounded_protocol import (
    KEEP_ALIVE_SECONDS,
    MAX_HEAD_BYTES,
    BoundedHttpToolsProtocol,
)
from pwa_server.serve.client_auth_context import client_certificate_context
from pwa_server.serve.listeners import Listeners
from pwa_server.serve.plain_protocol import UnloggedHttpToolsProtocol
from pwa_server.serve.tls_profile import server_context
from pwa_server.serve.tls_protocol import ClientCertH11Protocol
from pwa_server.settings import Settings
from pwa_server.store.authorities import all_authorities
from pwa_server.vocabulary import AuthorityRole
from pwa_server.web.app import create_app
from pwa_server.web.asgi import ASGIApp
from pwa_server.web.middleware.check_listener import CheckListener

GRACEFUL_SHUTDOWN_SECONDS = 10


def _config(
    settings: Settings, app: ASGIApp, *, client_certificates: bool = False, tls: bool = True
) -> uvicorn.Config:
    files = TlsFiles(settings.tls_dir)
    extra: dict[str, Any] = {}
    if tls:

        def context_factory(_config: uvicorn.Config, _default: object) -> ssl.SSLContext:
            if client_certificates:
                return client_certificate_context(
                    files.certificate_chain, files.private_key, files.client_ca_bundle
                )
            return server_context(files.certificate_chain, files.private_key)

        # uvicorn's own context would offer every cipher and group OpenSSL has.
        extra["ssl_context_factory"] = context_factory
    return uvicorn.Config(
        app,
        http=_protocol(tls=tls, client_certificates=client_certificates),
        # A worker that restarts (a new issuing CA) must not wait for idle keep-alive
        # connections for ever: the supervisor starts its successor only once it has exited.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # The check listener's h11 has a limit of its own: a backstop behind BoundedHead's,
        # which counts after each read, so h11's must leave room for one read (up to 256 KiB).
        h11_max_incomplete_event_size=MAX_HEAD_BYTES + 512 * 1024,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
        log_config=None,
        **extra,
    )


def _protocol(*, tls: bool, client_certificates: bool) -> type[asyncio.Protocol]:
    """Only the check listener needs our h11 protocol (it hands the client certificate on);
    the others use httptools, whose C parser costs a fraction of h11's per request
    (bench/ocsp.py), and the plain-HTTP one logs no requests (plain_protocol says why)."""
    if client_certificates:
        return ClientCertH11Protocol
    return BoundedHttpToolsProtocol if tls else UnloggedHttpToolsProtocol


def run_worker(settings: Settings, listeners: Listeners) -> None:
    """One worker process: open the token and database, serve both listeners until told to stop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    redact_handlers(logging.getLogger())
    services = open_services(settings, retry=True)
    write_client_ca_bundle(TlsFiles(settings.tls_dir), client_certificate_authorities(services))
    app = create_app(services)
    servers = [
        (uvicorn.Server(_config(settings, app)), listeners.https),
        (
            uvicorn.Server(_config(settings, CheckListener(app), client_certificates=True)),
            listeners.check,
        ),
        (uvicorn.Server(_config(settings, app, tls=False)), listeners.http),
    ]

    async def serve_all() -> None:
        stop = asyncio.Event()
        loops = start_background_loops(services, [server for server, _ in servers], stop=stop)
        try:
            # Each server installs its signal handlers over the previous one's and, once
            # stopped, re-raises the signal: a SIGTERM stops them one after the other.
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
        finally:
            stop.set()
            await asyncio.gather(*loops)

    try:
        # uvloop's C event loop and transports: a third of a reused OCSP response's cost was
        # asyncio's own (bench/ocsp.py).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_all())
    finally:
        services.close()


def client_certificate_authorities(services: Services) -> list[x509.Certificate]:
    """The root and every issuing CA whose certificates may still be presented: the active
    one and those retired by a key ceremony, while their own certificates are valid."""
    now = services.now()
    with services.engine.connect() as connection:
        rows = all_authorities(connection)
    certificates = [
        x509.load_der_x509_certificate(row.certificate_der)
        for row in rows
        if row.role in (AuthorityRole.ROOT, AuthorityRole.ISSUING)
    ]
    return [
        certificate
        for certificate in certificates
        if certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc
    ]
