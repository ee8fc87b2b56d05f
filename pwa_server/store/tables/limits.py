"""Rate limits and throttles shared by every worker and instance."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String, Table

from pwa_server.store.tables.base import UTCDateTime, metadata

# Token buckets per client address (an IPv6 /64) and purpose, in front of the forms that
# check a secret and of officer sign-in: shared by every worker and instance.
client_rate_buckets = Table(
    "client_rate_buckets",
    metadata,
    Column("bucket", String(80), primary_key=True),  # "<purpose> <address or /64>"
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False, index=True),  # Unix seconds
)

# Wrong download passwords, per certificate user ID and client and per client: after a few,
# the next attempt waits until retry_at (doubling). Unknown IDs get rows too, so that nothing
# tells them from existing ones.
guess_throttles = Table(
    "guess_throttles",
    metadata,
    Column("key", String(160), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("retry_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False, index=True),
)
