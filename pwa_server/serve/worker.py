"""`shomei serve`: the HTTPS listeners and the worker processes behind them.

Three listeners, one application: the PWA on https_port; the installation check on
check_port, which asks for (but does not require) a client certificate and accepts any, so
that the application can judge it; and /pki/* over plain HTTP on http_port. Crypto work holds the
GIL, so throughput comes from processes: the sockets are bound once here and shared by
`workers` spawned processes, each running one uvicorn server per listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
import uvloop
from cryptography import x509

from pwa_server.audit import SEAL_INTERVAL, seal
from pwa_server.notify.sender import run_sender
from pwa_server.notify.transports import transport_from_settings
from pwa_server.pki.authority import fingerprint
from pwa_server.pki.rollover import active_issuing_fingerprint
from pwa_server.pki.tls_identity import TlsFiles, write_client_ca_bundle
from pwa_server.runtime import Services, open_services
from pwa_server.settings import ConfigurationError, Settings
from pwa_server.sites.webhook_delivery import run_webhook_sender
from pwa_server.store.authorities import all_authorities
from pwa_server.web.access_log import redact_handlers
from pwa_server.web.app import create_app
from pwa_server.web.asgi import ASGIApp
from pwa_server.web.bounded_protocol import (
    KEEP_ALIVE_SECONDS,
    MAX_HEAD_BYTES,
    BoundedHttpToolsProtocol,
)
from pwa_server.web.check_listener import CheckListener
from pwa_server.web.client_auth_context import client_certificate_context
from pwa_server.web.plain_protocol import UnloggedHttpToolsProtocol
from pwa_server.web.tls_profile import server_context
from pwa_server.web.tls_protocol import ClientCertH11Protocol

logger = logging.getLogger("shomei.serve")

_RESTART_DELAY = 1.0
GRACEFUL_SHUTDOWN_SECONDS = 10


@dataclass(frozen=True)
class Listeners:
    """The bound sockets, shared by every worker."""

    https: socket.socket
    check: socket.socket
    http: socket.socket


def bind(settings: Settings) -> Listeners:
    """Bind both ports now, so that a port in use is reported before any worker starts."""
    bound: list[socket.socket] = []
    try:
        for port in (settings.https_port, settings.check_port, settings.http_port):
            bound.append(_bind(settings.host, port))
    except ConfigurationError:
        for sock in bound:
            sock.close()
        raise
    return Listeners(*bound)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and accepted sockets inherit it. Without it a response written in two parts
    # (headers, body) waits ~40 ms for the client's delayed ACK (bench/ocsp.py measured it).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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
        # The outbox senders (mail, webhooks) run in every worker: claims keep one message
        # from going out twice.
        stop = asyncio.Event()
        senders = [
            asyncio.create_task(
                run_sender(services.engine, transport_from_settings(settings), stop=stop)
            ),
            asyncio.create_task(run_webhook_sender(services.sites, stop=stop)),
            asyncio.create_task(_seal_audit_log(services, stop=stop)),
            asyncio.create_task(
                _restart_after_rollover(services, [server for server, _ in servers], stop=stop)
            ),
        ]
        try:
            # Each server installs its signal handlers over the previous one's and, once
            # stopped, re-raises the signal: a SIGTERM stops them one after the other.
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
        finally:
            stop.set()
            await asyncio.gather(*senders)

    try:
        # uvloop's C event loop and transports: a third of a reused OCSP response's cost was
        # asyncio's own (bench/ocsp.py).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_all())
    finally:
        services.close()


async def _seal_audit_log(services: Services, *, stop: asyncio.Event) -> None:
    """Seal the audit head at start and every SEAL_INTERVAL until `stop` is set (after
    writing the refused sign-ins counted in minutes that are over).

    Every worker seals: an unchanged head costs nothing, and two workers sealing the same
    head is harmless, while one sealer would be a single point that stops sealing silently.
    The token calls are synchronous, hence the thread; an error (database down, no seal
    key yet) is logged and the next round tries again.
    """
    while not stop.is_set():
        try:
            # Refused sign-ins of minutes that are over, so that the seal covers them too.
            await asyncio.to_thread(services.officers.refusals.flush, now=services.now())
            await asyncio.to_thread(seal, services.engine, services.token, now=services.now())
        except Exception:
            logger.exception("sealing the audit log failed; retrying in %s", SEAL_INTERVAL)
        # Waiting on the event, not sleeping, is what makes shutdown prompt.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SEAL_INTERVAL.total_seconds())


def client_certificate_authorities(services: Services) -> list[x509.Certificate]:
    """The root and every issuing CA whose certificates may still be presented: the active
    one and those retired by a key ceremony, while their own certificates are valid."""
    now = services.now()
    with services.engine.connect() as connection:
        rows = all_authorities(connection)
    certificates = [
        x509.load_der_x509_certificate(row.certificate_der)
        for row in rows
        if row.role in ("root", "issuing")
    ]
    return [
        certificate
        for certificate in certificates
        if certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc
    ]


# How often a worker asks whether a key ceremony replaced the issuing CA.
ROLLOVER_CHECK_INTERVAL = 5.0


async def _restart_after_rollover(
    services: Services, servers: list[uvicorn.Server], *, stop: asyncio.Event
) -> None:
    """After a key ceremony made a new issuing CA, stop this worker gracefully (requests in
    flight finish); the supervisor starts a new one, which loads the new CA with everything
    built on it (downloads, OCSP, CRL, the installation check). Restarting is simpler and
    safer than swapping the CA under requests that are being served."""
    loaded = fingerprint(services.issuing.certificate)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=ROLLOVER_CHECK_INTERVAL)
        if stop.is_set():
            return
        try:
            active = await asyncio.to_thread(active_issuing_fingerprint, services.engine)
        except Exception:
            logger.exception("checking for a new issuing CA failed; trying again")
            continue
        if active is not None and active != loaded:
            logger.warning("a new issuing CA (%s) is active: restarting this worker", active)
            for server in servers:
                server.should_exit = True
            return


def supervise(settings: Settings, listeners: Listeners) -> int:
    """Start the workers, restart any that dies, and stop them all on SIGINT or SIGTERM."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(settings, listeners), daemon=False)
        process.start()
        return process

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers = [start() for _ in range(settings.workers)]
    try:
        while not stopping:
            time.sleep(0.2)
            for index, worker in enumerate(workers):
                if not worker.is_alive() and not stopping:
                    logger.warning(
                        "worker %s exited with %s; restarting", worker.pid, worker.exitcode
                    )
                    time.sleep(_RESTART_DELAY)
                    workers[index] = start()
    finally:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in (listeners.https, listeners.check, listeners.http):
            sock.close()
    print("shomei: stopped", file=sys.stderr)
    return 0
