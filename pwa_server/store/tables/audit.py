"""The audit log, its head and the seals over it."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, String, Table, Text

from pwa_server.store.tables.base import UTCDateTime, metadata

# The audit log: append-only, each event carrying the hash of the one before it. Ids are
# handed out by audit_head (never by a sequence), so a rolled-back event leaves no gap.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("actor_kind", String(16), nullable=False),  # officer | site | user | system
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False, index=True),  # e.g. enrollment.locked
    Column("subject_kind", String(32), nullable=True),
    Column("subject", String(255), nullable=True, index=True),
    Column("outcome", String(16), nullable=False),  # success | failure
    Column("details", Text, nullable=True),  # JSON object, never a secret
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The one row (id 1) naming the newest event. Every append locks it first, which makes the
# chain strictly sequential across processes and instances.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_event_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

# The token keys that sign the head, with their public keys: verification needs no token.
audit_keys = Table(
    "audit_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_token_label", String(32), nullable=False),
    Column("key_label", String(64), nullable=False, unique=True),
    Column("key_id", String(64), nullable=False),
    Column("key_algorithm", String(16), nullable=False),
    Column("public_key_der", LargeBinary, nullable=False),  # SubjectPublicKeyInfo
    Column("status", String(16), nullable=False),  # active | retired
    Column("created_at", UTCDateTime, nullable=False),
)

# Signatures over the head, made periodically: a deleted or rewritten tail no longer matches.
# No foreign key to audit_events, so that a seal outlives the events someone deletes.
audit_seals = Table(
    "audit_seals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, nullable=False),
    Column("event_hash", String(64), nullable=False),
    Column("signed_at", UTCDateTime, nullable=False),
    Column("signature", LargeBinary, nullable=False),  # DER ECDSA
    Column("audit_key_id", Integer, ForeignKey("audit_keys.id"), nullable=False),
)
