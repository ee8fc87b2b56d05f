"""The background sender: claims due messages from the outbox and hands them over.

Each web worker process runs one sender task per channel (`run_sender` for mail, and one for
webhooks that `pwa_server.sites.webhook_delivery` builds on `run_channel_sender`); the
outbox's claims keep them from sending a message twice. What differs between channels is only
the `Deliver` callable; claiming, leases, backoff and releasing are shared here. The store is
synchronous, so its calls run in threads and never block the event loop that also serves
requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine

from pwa_server.notify.mail import parse_stored
from pwa_server.notify.outbox import (
    MAIL,
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

Deliver = Callable[[OutboxMessage], Awaitable[None]]
"""Hands one claimed message over; raises DeliveryError when it could not (any other
exception is treated as a bug: logged with its traceback and retried like a failure)."""


def utc_now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def mail_delivery(transport: MailTransport) -> Deliver:
    """The `Deliver` of the mail channel: the stored mail, parsed, handed to `transport`."""

    async def deliver(message: OutboxMessage) -> None:
        await transport.send(parse_stored(message.body))

    return deliver


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

    See `deliver_channel_due`, which this is for the mail channel.
    """
    return await deliver_channel_due(
        engine, MAIL, mail_delivery(transport), now=now, limit=limit, lease=lease, stop=stop
    )


async def deliver_channel_due(
    engine: Engine,
    channel: str,
    deliver: Deliver,
    *,
    now: dt.datetime,
    limit: int = BATCH,
    lease: dt.timedelta = LEASE,
    stop: asyncio.Event | None = None,
) -> int:
    """Hand the messages of `channel` due at `now` (up to `limit`) to `deliver`; return how
    many were delivered.

    A failure is recorded on its message (attempts, backoff, error text) and does not stop
    the others. When `stop` is set between messages, or the task is cancelled, the claims
    not yet used are released for the next round; the message in flight keeps its claim
    until the lease ends, since it may have reached the receiver (delivery is at least
    once), as do claims made by a claim_due call that a cancellation interrupted.
    """
    pending = await asyncio.to_thread(
        claim_due, engine, now=now, lease=lease, limit=limit, channel=channel
    )
    delivered = 0
    try:
        while pending and not (stop is not None and stop.is_set()):
            message = pending.pop(0)
            if await _deliver_one(engine, deliver, message, now=now):
                delivered += 1
    finally:
        if pending:
            await asyncio.to_thread(release_claims, engine, [left.id for left in pending])
    return delivered


async def _deliver_one(
    engine: Engine, deliver: Deliver, message: OutboxMessage, *, now: dt.datetime
) -> bool:
    try:
        await deliver(message)
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
    log.info(
        "outbox %s message %d delivered to %s", message.channel, message.id, message.destination
    )
    return True


async def _record_failure(
    engine: Engine, message: OutboxMessage, now: dt.datetime, error: str, *, permanent: bool = False
) -> None:
    updated = await asyncio.to_thread(
        mark_failed_attempt, engine, message.id, now=now, error=error, permanent=permanent
    )
    if updated.failed_at is not None:
        log.error(
            "outbox %s message %d to %s failed for good after %d attempts: %s",
            message.channel,
            message.id,
            message.destination,
            updated.attempts,
            error,
        )
    else:
        log.warning(
            "outbox %s message %d to %s failed (attempt %d, next at %s): %s",
            message.channel,
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
    """Deliver due mails every `interval` seconds until `stop` is set (see
    `run_channel_sender`)."""
    await run_channel_sender(
        engine,
        MAIL,
        mail_delivery(transport),
        stop=stop,
        interval=interval,
        clock=clock,
        limit=limit,
    )


async def run_channel_sender(
    engine: Engine,
    channel: str,
    deliver: Deliver,
    *,
    stop: asyncio.Event,
    interval: float = 2.0,
    clock: Callable[[], dt.datetime] = utc_now,
    limit: int = BATCH,
) -> None:
    """Deliver due messages of `channel` every `interval` seconds until `stop` is set.

    Errors (the database unreachable, say) are logged and the loop carries on: messages wait
    in the outbox until things recover. A full batch is followed at once by the next, so a
    backlog drains without waiting `interval` between batches.
    """
    while not stop.is_set():
        delivered = 0
        try:
            delivered = await deliver_channel_due(
                engine, channel, deliver, now=clock(), limit=limit, stop=stop
            )
        except Exception:
            log.exception("outbox %s sender round failed; retrying in %.1f s", channel, interval)
        if delivered >= limit:
            continue
        # Waiting on the event, not sleeping, is what makes shutdown prompt.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
