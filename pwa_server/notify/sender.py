"""The background sender: claims due mails from the outbox and hands them to a transport.

Each web worker process runs one `run_sender` task; the outbox's claims keep them from
sending a message twice. The store is synchronous, so its calls run in threads and never
block the event loop that also serves requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import Engine

from pwa_server.notify.mail import parse_stored
from pwa_server.notify.outbox import (
    OutboxMessage,
    claim_due,
    mark_delivered,
    mark_failed_attempt,
    release_claims,
)
from pwa_server.notify.transports import DeliveryError, MailTransport

log = logging.getLogger(__name__)

# A claim must outlast sending the whole batch (messages go one after another), or another
# worker could take a message still in flight: BATCH * the transport's timeout < LEASE.
BATCH = 10
LEASE = dt.timedelta(minutes=10)


def utc_now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


async def deliver_due(
    engine: Engine,
    transport: MailTransport,
    *,
    now: dt.datetime,
    limit: int = BATCH,
    lease: dt.timedelta = LEASE,
    stop: asyncio.Event | None = None,
) -> int:
    """Send the mails due at `now` (up to `limit`); return how many were delivered.

    A failure is recorded on its message (attempts, backoff, error text) and does not stop
    the others. When `stop` is set between messages, or the task is cancelled, the claims
    not yet used are released for the next round; the message in flight keeps its claim
    until the lease ends, since it may have reached the server (delivery is at least once),
    as do claims made by a claim_due call that a cancellation interrupted.
    """
    pending = await asyncio.to_thread(claim_due, engine, now=now, lease=lease, limit=limit)
    delivered = 0
    try:
        while pending and not (stop is not None and stop.is_set()):
            message = pending.pop(0)
            if await _deliver_one(engine, transport, message, now=now):
                delivered += 1
    finally:
        if pending:
            await asyncio.to_thread(release_claims, engine, [left.id for left in pending])
    return delivered


async def _deliver_one(
    engine: Engine, transport: MailTransport, message: OutboxMessage, *, now: dt.datetime
) -> bool:
    try:
        await transport.send(parse_stored(message.body))
    except DeliveryError as error:
        await _record_failure(engine, message, now, str(error), permanent=error.permanent)
        return False
    except Exception as error:
        # Not a delivery problem but a bug or a broken row: record it on the message (so it
        # backs off instead of failing every round) and keep the traceback in the log.
        log.exception("unexpected error sending outbox message %d", message.id)
        await _record_failure(engine, message, now, f"{type(error).__name__}: {error}")
        return False
    await asyncio.to_thread(mark_delivered, engine, message.id, now=now)
    log.info("outbox message %d delivered to %s", message.id, message.destination)
    return True


async def _record_failure(
    engine: Engine, message: OutboxMessage, now: dt.datetime, error: str, *, permanent: bool = False
) -> None:
    updated = await asyncio.to_thread(
        mark_failed_attempt, engine, message.id, now=now, error=error, permanent=permanent
    )
    if updated.failed_at is not None:
        log.error(
            "outbox message %d to %s failed for good after %d attempts: %s",
            message.id,
            message.destination,
            updated.attempts,
            error,
        )
    else:
        log.warning(
            "outbox message %d to %s failed (attempt %d, next at %s): %s",
            message.id,
            message.destination,
            updated.attempts,
            updated.next_attempt_at.isoformat(),
            error,
        )


async def run_sender(
    engine: Engine,
    transport: MailTransport,
    *,
    stop: asyncio.Event,
    interval: float = 2.0,
    clock: Callable[[], dt.datetime] = utc_now,
    limit: int = BATCH,
) -> None:
    """Deliver due mails every `interval` seconds until `stop` is set.

    Errors (the database unreachable, say) are logged and the loop carries on: mail waits
    in the outbox until things recover. A full batch is followed at once by the next, so a
    backlog drains without waiting `interval` between batches.
    """
    while not stop.is_set():
        delivered = 0
        try:
            delivered = await deliver_due(engine, transport, now=clock(), limit=limit, stop=stop)
        except Exception:
            log.exception("outbox sender round failed; retrying in %.1f s", interval)
        if delivered >= limit:
            continue
        # Waiting on the event, not sleeping, is what makes shutdown prompt.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
