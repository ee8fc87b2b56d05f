"""Token buckets per client in the database, on SQLite and PostgreSQL: what one client may
do at once and per minute, shared by every worker."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select

from pwa_server.store.client_buckets import take_token
from pwa_server.store.tables import client_rate_buckets

PER_MINUTE = 6
NOW = 1_800_000_000.0


def _take(engine: Engine, client: str = "192.0.2.1", *, now: float = NOW) -> float:
    with engine.begin() as connection:
        return take_token(
            connection, "guesses", client, capacity=PER_MINUTE, per_second=PER_MINUTE / 60, now=now
        )


def test_a_client_gets_its_capacity_at_once_then_is_told_how_long_to_wait(
    engine: Engine,
) -> None:
    taken = [_take(engine) for _ in range(PER_MINUTE)]
    assert taken == [0.0] * PER_MINUTE
    assert _take(engine) == 10.0  # one token every 60 / PER_MINUTE seconds


def test_the_bucket_refills_at_its_rate(engine: Engine) -> None:
    for _ in range(PER_MINUTE):
        _take(engine)
    assert _take(engine, now=NOW + 5) == 5.0
    assert _take(engine, now=NOW + 10) == 0.0
    assert _take(engine, now=NOW + 10) > 0


def test_clients_have_buckets_of_their_own(engine: Engine) -> None:
    for _ in range(PER_MINUTE):
        _take(engine, "192.0.2.1")
    assert _take(engine, "192.0.2.2") == 0.0


def test_concurrent_requests_share_one_allowance(engine: Engine) -> None:
    results: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        waited = _take(engine)
        with lock:
            results.append(waited)

    threads = [threading.Thread(target=take) for _ in range(3 * PER_MINUTE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(0.0) == PER_MINUTE


def test_buckets_full_again_are_forgotten(engine: Engine) -> None:
    _take(engine, "192.0.2.1")
    _take(engine, "192.0.2.2", now=NOW + 61)
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(client_rate_buckets))
        assert rows.scalar_one() == 1
