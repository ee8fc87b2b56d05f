"""Wrong download passwords slow the next attempt down instead of locking the enrollment.

The download password carries 64 random bits: guessing it is hopeless at any rate a server
answers, so a lock would protect nothing and would let anyone who knows a certificate user
ID (the CN, seen by every relying site) lock its owner out. Failures are counted per
certificate user ID and client network, and per client network; past a few, the next
attempt from there waits until a time that doubles with each failure. Unknown IDs are
counted the same way, so that no answer tells them from existing ones. Nothing here is
global to an enrollment: an attacker elsewhere cannot hold its owner back.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import Connection

from pwa_server.enrollment.errors import DownloadThrottledError
from pwa_server.store.guess_throttles import count_failure, prune, set_retry_at, throttled_until

# A day after its last failure a key's wait is over (the longest is an hour): forgotten.
_KEPT = dt.timedelta(days=1)


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures are free, and the wait after them (doubling up to `max_delay`)."""

    base_delay: dt.timedelta
    free_per_id: int = 5
    # Many people may share one address (a carrier's NAT, an office): more before it waits.
    free_per_client: int = 30
    max_delay: dt.timedelta = dt.timedelta(hours=1)

    def delay_after(self, failures: int, free: int) -> dt.timedelta | None:
        """The wait after the `failures`-th failure, or None while they are free."""
        if failures < free:
            return None
        doublings = min(failures - free, 32)
        delay: dt.timedelta = min(self.base_delay * (1 << doublings), self.max_delay)
        return delay


def client_network(address: str | None) -> str:
    """Where a client comes from: its IPv4 address, or its IPv6 /64 (one subscriber's)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def id_prefix(certificate_user_id: str) -> str:
    """The start of every key of one certificate user ID (what an unlock clears)."""
    return f"id:{certificate_user_id}@"


@dataclass(frozen=True)
class DownloadThrottle:
    """The keys one download attempt is counted under."""

    policy: ThrottlePolicy
    certificate_user_id: str
    client: str

    @property
    def id_key(self) -> str:
        return id_prefix(self.certificate_user_id) + self.client

    @property
    def client_key(self) -> str:
        return f"client:{self.client}"

    def check(self, connection: Connection, *, now: dt.datetime) -> None:
        """Raise DownloadThrottledError while either key must wait."""
        until = throttled_until(connection, [self.id_key, self.client_key], now=now)
        if until is not None:
            raise DownloadThrottledError(retry_after=math.ceil((until - now).total_seconds()))

    def count_failure(self, connection: Connection, *, now: dt.datetime) -> None:
        """One more wrong password from here: maybe a wait before the next."""
        for key, free in (
            (self.id_key, self.policy.free_per_id),
            (self.client_key, self.policy.free_per_client),
        ):
            delay = self.policy.delay_after(count_failure(connection, key, now=now), free)
            if delay is not None:
                set_retry_at(connection, key, now + delay)
        prune(connection, before=now - _KEPT)
