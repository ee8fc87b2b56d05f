"""Relying web sites, their API keys and what their API calls leave behind."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text

from pwa_server.store.tables.base import UTCDateTime, metadata, words
from pwa_server.vocabulary import AccountStatus, KeyProfile

# A relying web site: sends its users to enrollment, hears of them by webhook, and may take
# them back to one of its allowed return URLs.
sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),  # short, as in URLs and logs
    Column("display_name", String(255), nullable=False),
    Column("return_urls", Text, nullable=False),  # JSON list of exact URLs
    Column("webhook_url", String(2048), nullable=True),
    # The webhook secret is derived from the server's webhook key and this salt, so that the
    # database alone cannot forge deliveries; a new salt rotates it.
    Column("webhook_secret_salt", String(64), nullable=True),
    Column("default_profile", words(KeyProfile, 32), nullable=False),
    Column("status", words(AccountStatus, 16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# A site's API keys: the secret part is stored only as a SHA-256 hash.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # the public part of the key
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("label", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Requests per key per minute, counted by conditional UPDATEs (shared by every instance).
api_rate_windows = Table(
    "api_rate_windows",
    metadata,
    Column("key_id", String(32), ForeignKey("api_keys.id"), primary_key=True),
    Column("window_start", Integer, primary_key=True),  # Unix minute
    Column("requests", Integer, nullable=False),
)

# Idempotency-Key of enrollment creation: a retry finds the enrollment made the first time.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("enrollment_id", String(32), ForeignKey("enrollments.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Return assertions already redeemed through the API: each can be verified there once.
redeemed_assertions = Table(
    "redeemed_assertions",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("redeemed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
