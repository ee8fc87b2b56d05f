"""The background sender loop: it delivers, survives failures, and stops when told."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from pwa_server.notify.eml import list_mails
from pwa_server.notify.outbox import claim_due, enqueue_mail, message_by_id
from pwa_server.notify.sender import deliver_due, run_sender
from pwa_server.notify.transports import EmlDirectoryTransport, SmtpTransport
from pwa_server.store.database import create_database_engine
from testbed.serving import free_port
from tests.notify.conftest import (
    NOW,
    SUBJECT,
    Inbox,
    ServerFactory,
    japanese_mail,
    outbox_row,
)


async def eventually(condition: object, timeout: float = 10.0) -> None:
    """Wait until `condition()` is true, polling."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_the_loop_stops_promptly(engine: Engine, tmp_path: Path) -> None:
    transport = EmlDirectoryTransport(tmp_path / "mail")

    async def scenario() -> float:
        stop = asyncio.Event()
        # A long interval: only the stop event can end the wait quickly.
        task = asyncio.create_task(run_sender(engine, transport, stop=stop, interval=60))
        await asyncio.sleep(0.2)
        assert not task.done()
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, timeout=5)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.5


def test_the_loop_picks_up_mail_on_its_next_round(engine: Engine, tmp_path: Path) -> None:
    transport = EmlDirectoryTransport(tmp_path / "mail")

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_sender(engine, transport, stop=stop, interval=0.05))
        with engine.begin() as connection:
            enqueue_mail(connection, japanese_mail(), now=dt.datetime.now(dt.UTC))
        await eventually(lambda: len(list_mails(tmp_path / "mail")) == 1)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    [summary] = list_mails(tmp_path / "mail")
    assert summary.subject == SUBJECT


def test_a_backlog_drains_without_waiting_between_full_batches(
    engine: Engine, tmp_path: Path
) -> None:
    transport = EmlDirectoryTransport(tmp_path / "mail")
    with engine.begin() as connection:
        for number in range(25):
            enqueue_mail(connection, japanese_mail(f"u{number}@example.jp"), now=NOW)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_sender(engine, transport, stop=stop, interval=60, limit=10))
        await eventually(lambda: len(list_mails(tmp_path / "mail")) == 25)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())


def test_the_loop_survives_delivery_and_database_errors(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with engine.begin() as connection:
        message_id = enqueue_mail(connection, japanese_mail(), now=NOW)
    unreachable = SmtpTransport(host="127.0.0.1", port=free_port(), security="none", timeout=2)
    # A database without the schema: every round fails to claim.
    broken = create_database_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    # The clock moves an hour each round, so that the failed mail is due again every time.
    hours = itertools.count()

    def clock() -> dt.datetime:
        return NOW + dt.timedelta(hours=next(hours))

    async def scenario() -> None:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(
                run_sender(engine, unreachable, stop=stop, interval=0.01, clock=clock)
            ),
            asyncio.create_task(run_sender(broken, unreachable, stop=stop, interval=0.01)),
        ]

        def attempts() -> int:
            with engine.connect() as connection:
                stored = message_by_id(connection, message_id)
            assert stored is not None
            return stored.attempts

        await eventually(lambda: attempts() >= 3)
        await eventually(lambda: "round failed" in caplog.text)
        assert not any(task.done() for task in tasks)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)

    try:
        with caplog.at_level(logging.WARNING, logger="pwa_server.notify"):
            asyncio.run(scenario())
    finally:
        broken.dispose()
    assert "SMTPConnectError" in caplog.text
    assert "no such table" in caplog.text


def test_stopping_mid_batch_gives_back_the_unsent_claims(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as connection:
        for number in range(3):
            enqueue_mail(connection, japanese_mail(f"u{number}@example.jp"), now=NOW)
    stop = asyncio.Event()
    stop.set()
    transport = EmlDirectoryTransport(tmp_path / "mail")
    assert asyncio.run(deliver_due(engine, transport, now=NOW, stop=stop)) == 0
    # Released at once, not held for the lease: another worker may take them now.
    claimed = claim_due(engine, now=NOW, lease=dt.timedelta(minutes=1), limit=10)
    assert len(claimed) == 3


class SlowInbox(Inbox):
    """Takes its time over each message, so that a sender can be cancelled mid-batch."""

    def __init__(self) -> None:
        super().__init__()
        self.receiving = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.receiving.set()
        await asyncio.sleep(0.3)
        return await super().handle_DATA(server, session, envelope)


def test_cancelling_mid_batch_gives_back_the_unsent_claims(
    engine: Engine, smtp_server_factory: ServerFactory
) -> None:
    inbox = SlowInbox()
    server = smtp_server_factory(inbox)
    transport = SmtpTransport(host=server.host, port=server.port, security="none", timeout=5)
    with engine.begin() as connection:
        ids = [
            enqueue_mail(connection, japanese_mail(f"u{number}@example.jp"), now=NOW)
            for number in range(3)
        ]

    async def scenario() -> None:
        task = asyncio.create_task(deliver_due(engine, transport, now=NOW))
        # Cancel once the first message is really being sent, however slow the machine is.
        assert await asyncio.to_thread(inbox.receiving.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    # The two never tried are free again; the one in flight stays claimed until its lease ends.
    claimed = claim_due(engine, now=NOW, lease=dt.timedelta(minutes=1), limit=10)
    assert [message.id for message in claimed] == ids[1:]
    assert all(outbox_row(engine, message_id).attempts == 0 for message_id in ids)
