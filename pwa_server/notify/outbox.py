"""The transactional outbox: mails written with the change they report, sent afterwards.

A mail is inserted in the caller's transaction, so it exists exactly when the domain change
committed. Senders (one per web worker process, possibly several machines) claim due
messages with a lease: a conditional UPDATE that only one of them can win, which works the
same on SQLite and PostgreSQL. A claim that is never settled (a crashed worker) expires with
its lease and the message is tried again, so delivery is at least once, never concurrent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update

from pwa_server.notify.mail import recipients, to_stored
from pwa_server.store.tables import outbox_messages
from pwa_server.vocabulary import DeliveryState

MAIL = "mail"

# Retries: 30 s, 1 min, 2 min, ... capped at 1 h; after MAX_ATTEMPTS failures (about three
# hours in all) the message is marked failed and left for an operator to look at.
MAX_ATTEMPTS = 10
FIRST_RETRY = dt.timedelta(seconds=30)
LONGEST_RETRY = dt.timedelta(hours=1)

# Columns are bounded; a long SMTP transcript is cut rather than rejected.
_ERROR_LIMIT = 2000
_SUBJECT_LIMIT = 998
_DESTINATION_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One row of the outbox."""

    id: int
    channel: str
    destination: str
    subject: str | None
    body: str
    created_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime
    claimed_until: dt.datetime | None
    delivered_at: dt.datetime | None
    failed_at: dt.datetime | None
    last_error: str | None
    site_id: int | None = None

    @property
    def state(self) -> DeliveryState:
        """Delivered, failed (given up) or pending (tried again at next_attempt_at)."""
        if self.delivered_at is not None:
            return DeliveryState.DELIVERED
        if self.failed_at is not None:
            return DeliveryState.FAILED
        return DeliveryState.PENDING


def enqueue_mail(connection: Connection, message: EmailMessage, *, now: dt.datetime) -> int:
    """Put `message` into the outbox in the caller's transaction; return its id.

    Nothing is sent here: the mail leaves only after the caller commits, and never if it
    rolls back.
    """
    destination = ", ".join(recipients(message))
    if not destination:
        raise ValueError("the mail has no recipient")
    subject = message["Subject"]
    return enqueue(
        connection,
        channel=MAIL,
        destination=destination,
        subject=str(subject) if subject is not None else None,
        body=to_stored(message),
        now=now,
    )


def enqueue(
    connection: Connection,
    *,
    channel: str,
    destination: str,
    body: str,
    now: dt.datetime,
    subject: str | None = None,
    site_id: int | None = None,
) -> int:
    """Put a message of any channel into the outbox in the caller's transaction."""
    result = connection.execute(
        insert(outbox_messages).values(
            channel=channel,
            destination=destination[:_DESTINATION_LIMIT],
            subject=subject[:_SUBJECT_LIMIT] if subject is not None else None,
            body=body,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
            site_id=site_id,
        )
    )
    inserted = result.inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database returned no id for the outbox message")
    return int(inserted[0])


def claim_due(
    engine: Engine,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
    channel: str = MAIL,
) -> list[OutboxMessage]:
    """Claim up to `limit` due messages of `channel` until `now + lease`, oldest first.

    Concurrent callers may read the same candidates; each row is then taken by a conditional
    UPDATE in its own short transaction, and only the caller whose UPDATE changed the row
    owns it. On PostgreSQL the loser's UPDATE waits for the winner's commit and re-checks
    the condition; on SQLite writers are serialised. Short transactions keep SQLite's write
    lock brief and avoid upgrading a read snapshot that another writer has made stale.
    """
    with engine.connect() as connection:
        ids: list[int] = list(
            connection.execute(
                select(outbox_messages.c.id)
                .where(
                    outbox_messages.c.channel == channel,
                    outbox_messages.c.next_attempt_at <= now,
                    *_claimable(now),
                )
                .order_by(outbox_messages.c.next_attempt_at, outbox_messages.c.id)
                .limit(limit)
            ).scalars()
        )
    claimed = []
    for message_id in ids:
        with engine.begin() as connection:
            won = connection.execute(
                update(outbox_messages)
                .where(outbox_messages.c.id == message_id, *_claimable(now))
                .values(claimed_until=now + lease)
            ).rowcount
            if won == 1:
                claimed.append(_fetch(connection, message_id))
    return claimed


def _claimable(now: dt.datetime) -> tuple[Any, ...]:
    """Conditions for a message that is still to be sent and that no live claim holds."""
    return (
        outbox_messages.c.delivered_at.is_(None),
        outbox_messages.c.failed_at.is_(None),
        or_(outbox_messages.c.claimed_until.is_(None), outbox_messages.c.claimed_until < now),
    )


def mark_delivered(engine: Engine, message_id: int, *, now: dt.datetime) -> None:
    """Record that the message was handed over; it is never claimed again."""
    with engine.begin() as connection:
        connection.execute(
            update(outbox_messages)
            .where(outbox_messages.c.id == message_id, outbox_messages.c.delivered_at.is_(None))
            .values(delivered_at=now, claimed_until=None)
        )


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failure: 30 s doubling each time, at most 1 h."""
    if attempts < 1:
        raise ValueError("retry_delay counts failures from 1")
    # Compare exponents, not products, so that a large count cannot overflow timedelta.
    exponent = attempts - 1
    if exponent >= 32:
        return LONGEST_RETRY
    delay: dt.timedelta = FIRST_RETRY * (1 << exponent)
    return min(delay, LONGEST_RETRY)


def mark_failed_attempt(
    engine: Engine,
    message_id: int,
    *,
    now: dt.datetime,
    error: str,
    permanent: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> OutboxMessage:
    """Count a failed attempt and release the claim: retry later, or give up for good.

    The message fails for good after `max_attempts` failures, or at once when `permanent`
    (the server refused the recipient or the content, so trying again cannot help). A
    message delivered meanwhile (by a sender whose claim outlived ours) stays delivered.
    Returns the row as it is afterwards.
    """
    with engine.begin() as connection:
        current = _fetch(connection, message_id)
        attempts = current.attempts + 1
        gives_up = permanent or attempts >= max_attempts
        connection.execute(
            update(outbox_messages)
            .where(
                outbox_messages.c.id == message_id,
                outbox_messages.c.attempts == current.attempts,
                outbox_messages.c.delivered_at.is_(None),
            )
            .values(
                attempts=attempts,
                next_attempt_at=now + retry_delay(attempts),
                claimed_until=None,
                failed_at=now if gives_up else None,
                last_error=error[:_ERROR_LIMIT],
            )
        )
        return _fetch(connection, message_id)


def release_claims(engine: Engine, message_ids: list[int]) -> None:
    """Give back claims that will not be used (the sender is stopping), without an attempt."""
    if not message_ids:
        return
    with engine.begin() as connection:
        connection.execute(
            update(outbox_messages)
            .where(
                outbox_messages.c.id.in_(message_ids),
                outbox_messages.c.delivered_at.is_(None),
            )
            .values(claimed_until=None)
        )


def message_by_id(connection: Connection, message_id: int) -> OutboxMessage | None:
    """The outbox row `message_id`, or None if there is none."""
    row = connection.execute(
        select(outbox_messages).where(outbox_messages.c.id == message_id)
    ).one_or_none()
    return OutboxMessage(**row._mapping) if row is not None else None


def _fetch(connection: Connection, message_id: int) -> OutboxMessage:
    message = message_by_id(connection, message_id)
    if message is None:
        raise LookupError(f"no outbox message {message_id}")
    return message
