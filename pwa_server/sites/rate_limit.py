"""Requests per API key per minute, counted in the database so that the limit holds across
every worker and instance (an in-process counter would multiply it by their number)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine

from pwa_server.sites.errors import RateLimitedError
from pwa_server.store.sites import count_request, touch_api_key


@dataclass(frozen=True)
class Allowance:
    """What the RateLimit headers tell the caller after a request was counted."""

    limit: int
    remaining: int
    reset_seconds: int


class RateLimiter:
    """A fixed one-minute window per key."""

    def __init__(self, engine: Engine, per_minute: int) -> None:
        self.engine = engine
        self.per_minute = per_minute

    def count(self, key_id: str, *, now: dt.datetime) -> Allowance:
        """Count one request (and note the key's last use); raise RateLimitedError once the
        window's allowance is spent."""
        seconds = int(now.timestamp())
        window_start = seconds // 60
        reset = 60 - seconds % 60
        with self.engine.begin() as connection:
            used = count_request(connection, key_id, window_start=window_start)
            touch_api_key(connection, key_id, now=now)
        if used > self.per_minute:
            raise RateLimitedError(retry_after=reset, limit=self.per_minute)
        return Allowance(self.per_minute, self.per_minute - used, reset)
