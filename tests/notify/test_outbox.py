"""The outbox on SQLite and PostgreSQL: transactional enqueue, claims, backoff, giving up."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, insert

from pwa_server.notify.mail import parse_stored
from pwa_server.notify.outbox import (
    MAX_ATTEMPTS,
    claim_due,
    enqueue_mail,
    mark_delivered,
    mark_failed_attempt,
    release_claims,
    retry_delay,
)
from pwa_server.store.database import create_database_engine
from pwa_server.store.tables import outbox_messages
from tests.notify.conftest import NOW, SUBJECT, enqueue_and_roll_back, japanese_mail, outbox_row

LEASE = dt.timedelta(minutes=5)


def enqueue(engine: Engine, to: str = "yamada@example.jp", now: dt.datetime = NOW) -> int:
    with engine.begin() as connection:
        return enqueue_mail(connection, japanese_mail(to), now=now)


def claimed_ids(engine: Engine, now: dt.datetime = NOW, limit: int = 100) -> list[int]:
    return [message.id for message in claim_due(engine, now=now, lease=LEASE, limit=limit)]


def test_enqueue_stores_the_whole_message(engine: Engine) -> None:
    mail = japanese_mail(to=["山田 <yamada@example.jp>", "sato@example.jp"])
    with engine.begin() as connection:
        message_id = enqueue_mail(connection, mail, now=NOW)
    stored = outbox_row(engine, message_id)
    assert stored.channel == "mail"
    assert stored.destination == "yamada@example.jp, sato@example.jp"
    assert stored.subject == SUBJECT
    assert stored.created_at == NOW
    assert stored.next_attempt_at == NOW
    assert stored.attempts == 0
    assert (stored.claimed_until, stored.delivered_at, stored.failed_at) == (None, None, None)
    assert parse_stored(stored.body)["Message-ID"] == mail["Message-ID"]


def test_a_rolled_back_transaction_leaves_no_mail(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="domain change failed"):
        enqueue_and_roll_back(engine)
    assert claimed_ids(engine, now=NOW + dt.timedelta(days=1)) == []


def test_only_due_messages_are_claimed_oldest_first(engine: Engine) -> None:
    later = enqueue(engine, "later@example.jp", now=NOW + dt.timedelta(minutes=1))
    first = enqueue(engine, "first@example.jp", now=NOW)
    assert claimed_ids(engine, now=NOW) == [first]
    assert claimed_ids(engine, now=NOW + dt.timedelta(minutes=1)) == [later]


def test_claims_respect_the_limit(engine: Engine) -> None:
    ids = [enqueue(engine, f"user{number}@example.jp") for number in range(5)]
    assert claimed_ids(engine, limit=2) == ids[:2]
    assert claimed_ids(engine, limit=10) == ids[2:]


def test_a_claim_holds_until_its_lease_expires(engine: Engine) -> None:
    message_id = enqueue(engine)
    [claimed] = claim_due(engine, now=NOW, lease=LEASE, limit=10)
    assert claimed.claimed_until == NOW + LEASE
    assert claimed_ids(engine, now=NOW + LEASE) == []  # still held at the very end
    # A worker that died never settles its claim; after the lease another one takes over.
    assert claimed_ids(engine, now=NOW + LEASE + dt.timedelta(microseconds=1)) == [message_id]


def test_released_claims_are_claimable_at_once(engine: Engine) -> None:
    message_id = enqueue(engine)
    assert claimed_ids(engine) == [message_id]
    release_claims(engine, [message_id])
    assert claimed_ids(engine) == [message_id]


def test_delivered_messages_are_never_claimed_again(engine: Engine) -> None:
    message_id = enqueue(engine)
    assert claimed_ids(engine) == [message_id]
    mark_delivered(engine, message_id, now=NOW)
    stored = outbox_row(engine, message_id)
    assert stored.delivered_at == NOW
    assert stored.claimed_until is None
    assert claimed_ids(engine, now=NOW + dt.timedelta(days=30)) == []


def test_other_channels_are_left_alone(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(outbox_messages).values(
                channel="webhook",
                destination="https://site.example/hook",
                body="{}",
                created_at=NOW,
                attempts=0,
                next_attempt_at=NOW,
            )
        )
    mail_id = enqueue(engine)
    assert claimed_ids(engine) == [mail_id]


def test_retry_delays_double_from_30_seconds_up_to_an_hour() -> None:
    delays = [retry_delay(attempts).total_seconds() for attempts in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(10_000) == dt.timedelta(hours=1)
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(0)


def test_failed_attempts_back_off_then_give_up(engine: Engine) -> None:
    message_id = enqueue(engine)
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert claimed_ids(engine, now=now) == [message_id]
        updated = mark_failed_attempt(engine, message_id, now=now, error=f"451 try {attempt}")
        assert updated.attempts == attempt
        assert updated.last_error == f"451 try {attempt}"
        assert updated.claimed_until is None
        assert updated.next_attempt_at == now + retry_delay(attempt)
        if attempt < MAX_ATTEMPTS:
            assert updated.failed_at is None
            # Not due before its time, due exactly then.
            assert claimed_ids(engine, now=updated.next_attempt_at - dt.timedelta(seconds=1)) == []
            now = updated.next_attempt_at
    assert updated.failed_at == now
    assert claimed_ids(engine, now=now + dt.timedelta(days=365)) == []


def test_a_permanent_failure_gives_up_at_once(engine: Engine) -> None:
    message_id = enqueue(engine)
    assert claimed_ids(engine) == [message_id]
    updated = mark_failed_attempt(
        engine, message_id, now=NOW, error="550 no such user", permanent=True
    )
    assert (updated.attempts, updated.failed_at) == (1, NOW)
    assert claimed_ids(engine, now=NOW + dt.timedelta(days=1)) == []


def test_a_late_failure_does_not_undo_a_delivery(engine: Engine) -> None:
    message_id = enqueue(engine)
    mark_delivered(engine, message_id, now=NOW)
    updated = mark_failed_attempt(engine, message_id, now=NOW, error="timeout")
    assert updated.delivered_at == NOW
    assert (updated.attempts, updated.failed_at, updated.last_error) == (0, None, None)


def test_long_errors_are_cut_to_fit(engine: Engine) -> None:
    message_id = enqueue(engine)
    updated = mark_failed_attempt(engine, message_id, now=NOW, error="x" * 10_000)
    assert updated.last_error == "x" * 2000


def test_concurrent_claimers_never_claim_one_message_twice(
    engine: Engine, database_url: str
) -> None:
    ids = [enqueue(engine, f"user{number}@example.jp") for number in range(60)]
    workers = 4
    # One engine each, as separate worker processes would have: no shared pool or connection.
    engines = [create_database_engine(database_url) for _ in range(workers)]
    start = threading.Barrier(workers)

    def claim_until_empty(own: Engine) -> list[int]:
        start.wait()
        taken: list[int] = []
        while batch := claimed_ids(own, limit=3):
            taken.extend(batch)
        return taken

    try:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(claim_until_empty, engines))
    finally:
        for opened in engines:
            opened.dispose()
    everything = [message_id for taken in results for message_id in taken]
    assert sorted(everything) == ids  # each message claimed exactly once, none left over
