"""Concurrent appenders, each with an engine of its own as separate processes would have, make
one unbroken chain; a verification running meanwhile sees one consistent moment."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, insert, update

from pwa_server.audit import ActorKind, AuditAction, Verification, events, record, verify
from pwa_server.store.database import create_database_engine
from pwa_server.store.tables import redeemed_assertions
from tests.audit.conftest import START

THREADS = 4
EVENTS_EACH = 25


def appender(url: str, worker: int, barrier: threading.Barrier) -> list[int]:
    """Append EVENTS_EACH events, each in a transaction that also changes other rows."""
    engine = create_database_engine(url)
    ids = []
    try:
        barrier.wait()
        for number in range(EVENTS_EACH):
            with engine.begin() as connection:
                # Even workers make a change before recording it, as the application does;
                # odd ones record first, so that on SQLite the append itself opens the write
                # transaction.
                if worker % 2 == 0:
                    connection.execute(
                        insert(redeemed_assertions).values(
                            jti=f"w{worker}-{number}",
                            redeemed_at=START,
                            expires_at=START + dt.timedelta(minutes=5),
                        )
                    )
                ids.append(
                    record(
                        connection,
                        actor_kind=ActorKind.SITE,
                        actor=f"site-{worker}",
                        action=AuditAction.SITE_UPDATED,
                        subject=f"w{worker}-{number}",
                        details={"worker": worker, "number": number},
                        now=START + dt.timedelta(microseconds=number),
                    )
                )
                connection.execute(
                    update(redeemed_assertions)
                    .where(redeemed_assertions.c.jti == f"w{worker}-{number}")
                    .values(expires_at=START + dt.timedelta(minutes=10))
                )
                if worker % 2 == 1:
                    connection.execute(
                        insert(redeemed_assertions).values(
                            jti=f"w{worker}-{number}",
                            redeemed_at=START,
                            expires_at=START + dt.timedelta(minutes=5),
                        )
                    )
    finally:
        engine.dispose()
    return ids


def test_four_threads_appending_25_events_each_make_one_unbroken_chain(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(THREADS)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(appender, [url] * THREADS, range(THREADS), [barrier] * THREADS))

    all_ids = sorted(event_id for ids in results for event_id in ids)
    assert all_ids == list(range(1, THREADS * EVENTS_EACH + 1))
    assert all(ids == sorted(ids) for ids in results)
    result = verify(engine)
    assert result.ok, result.problem
    assert result.events == THREADS * EVENTS_EACH
    # Every worker's events are there, in the order it made them.
    for worker in range(THREADS):
        mine = events(engine, limit=1000, actor=f"site-{worker}")
        assert [event.subject for event in reversed(mine)] == [
            f"w{worker}-{number}" for number in range(EVENTS_EACH)
        ]


def test_verifying_while_others_append_sees_an_intact_chain(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(THREADS)
    verifications: list[Verification] = []

    with ThreadPoolExecutor(THREADS) as pool:
        running = [pool.submit(appender, url, worker, barrier) for worker in range(THREADS - 1)]
        barrier.wait()
        while not all(future.done() for future in running):
            verifications.append(verify(engine))
        for future in running:
            future.result()

    assert verifications
    assert all(result.ok for result in verifications), [
        result.problem for result in verifications if not result.ok
    ]
    assert verify(engine).events == (THREADS - 1) * EVENTS_EACH
