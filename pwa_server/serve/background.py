"""The loops every worker runs beside its servers: the mail and webhook outboxes, the audit
seal, and the watch for a new issuing CA. Each runs until the worker's `stop` event is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from pwa_server.audit import SEAL_INTERVAL, seal
from pwa_server.notify.sender import run_sender
from pwa_server.notify.transports import transport_from_settings
from pwa_server.pki.authority import fingerprint
from pwa_server.pki.rollover import active_issuing_fingerprint
from pwa_server.runtime import Services
from pwa_server.sites.webhook_delivery import run_webhook_sender

logger = logging.getLogger("shomei.serve")

# How often a worker asks whether a key ceremony replaced the issuing CA.
ROLLOVER_CHECK_INTERVAL = 5.0


def start_background_loops(
    services: Services, servers: list[uvicorn.Server], *, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """Start this worker's loops on the running event loop; await the tasks after `stop`."""
    # The outbox senders (mail, webhooks) run in every worker: claims keep one message
    # from going out twice.
    return [
        asyncio.create_task(
            run_sender(services.engine, transport_from_settings(services.settings), stop=stop)
        ),
        asyncio.create_task(run_webhook_sender(services.sites, stop=stop)),
        asyncio.create_task(seal_audit_log(services, stop=stop)),
        asyncio.create_task(restart_after_rollover(services, servers, stop=stop)),
    ]


async def seal_audit_log(services: Services, *, stop: asyncio.Event) -> None:
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


async def restart_after_rollover(
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
