"""Token buckets in the database: one row per bucket, taken from by conditional UPDATEs so
that concurrent workers and instances share one allowance."""

from __future__ import annotations

from sqlalchemy import Connection, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pwa_server.store.tables import client_rate_buckets

_buckets = client_rate_buckets


def take_token(
    connection: Connection,
    purpose: str,
    client: str,
    *,
    capacity: int,
    per_second: float,
    now: float,
) -> float:
    """Take one token from the client's bucket for `purpose` (full at first, refilled at
    `per_second` up to `capacity`): 0.0 when taken, else the seconds until one is there."""
    bucket = f"{purpose} {client}"
    grown = _buckets.c.tokens + (now - _buckets.c.updated_at) * per_second
    refilled = case((grown > capacity, capacity), else_=grown)
    for _ in range(3):
        taken = connection.execute(
            update(_buckets)
            .where(_buckets.c.bucket == bucket, refilled >= 1)
            .values(tokens=refilled - 1, updated_at=now)
            .returning(_buckets.c.tokens)
        ).scalar_one_or_none()
        if taken is not None:
            return 0.0
        row = connection.execute(
            select(_buckets.c.tokens, _buckets.c.updated_at).where(_buckets.c.bucket == bucket)
        ).one_or_none()
        if row is not None:
            elapsed = now - float(row.updated_at)
            have = min(float(capacity), float(row.tokens) + elapsed * per_second)
            if have < 1:
                return (1 - have) / per_second
            continue  # made or refilled by another request since the UPDATE: take again
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(_buckets).values(bucket=bucket, tokens=capacity - 1, updated_at=now)
                )
        except IntegrityError:
            continue  # another request made the row first: take from it
        # A bucket untouched long enough to be full again says nothing: forget it.
        connection.execute(
            delete(_buckets).where(
                _buckets.c.bucket.startswith(f"{purpose} ", autoescape=True),
                _buckets.c.updated_at < now - capacity / per_second,
            )
        )
        return 0.0
    # Lost every race in a row to concurrent requests: as if the bucket were empty.
    return 1 / per_second
