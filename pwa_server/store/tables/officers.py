"""Officers of the console: their keys, invitations, sessions and refused sign-ins."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from pwa_server.store.tables.base import UTCDateTime, metadata, words
from pwa_server.vocabulary import AccountStatus

# Officers of the console. They sign in with WebAuthn keys only; the id is also the WebAuthn
# user handle (random, so that it says nothing about the person).
officers = Table(
    "officers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("display_name", String(255), nullable=False),
    Column("role", String(32), nullable=False),  # security_officer | registration_officer | auditor
    Column("status", words(AccountStatus, 16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sign_in_at", UTCDateTime, nullable=True),
)

# An officer's WebAuthn keys. Each use changes the counter by a conditional UPDATE, so that one
# assertion can never be accepted twice.
officer_credentials = Table(
    "officer_credentials",
    metadata,
    Column("credential_id", LargeBinary, primary_key=True),
    Column("officer_id", String(32), ForeignKey("officers.id"), nullable=False, index=True),
    Column("public_key", LargeBinary, nullable=False),  # COSE_Key
    Column("sign_count", BigInteger, nullable=False),  # the authenticator's, up to 2**32 - 1
    Column("transports", Text, nullable=False),  # JSON list, handed back to the browser
    Column("aaguid", String(36), nullable=False),
    Column("label", String(255), nullable=False),
    Column("device_type", String(16), nullable=False),  # single_device | multi_device
    Column("backed_up", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    # Issue time of the newest challenge this key answered: older ones are refused.
    Column("last_challenge_issued_at", UTCDateTime, nullable=True),
)

# One-time links that register an officer; the token is stored only as a SHA-256 hash. The
# officer's id is chosen with the invitation: the key registered through it stores it.
officer_invitations = Table(
    "officer_invitations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("officer_id", String(32), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("created_by", String(32), ForeignKey("officers.id"), nullable=True),  # None: bootstrap
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    # Security officers' approvals the link needs before it registers anyone, the inviter's
    # counted (1: it works at once).
    Column("approvals_required", Integer, nullable=False, server_default="1"),
)

# Another security officer's approval of an invitation of a security officer; the primary
# key lets each officer approve an invitation once.
invitation_approvals = Table(
    "invitation_approvals",
    metadata,
    Column("invitation_id", Integer, ForeignKey("officer_invitations.id"), primary_key=True),
    Column("officer_id", String(32), ForeignKey("officers.id"), primary_key=True),
    Column("approved_at", UTCDateTime, nullable=False),
)

# Console sessions, server-side: the cookie carries a random token whose SHA-256 is the id,
# so that signing out, idling and the absolute lifetime end a session whatever a copy of the
# cookie says. last_seen_at is written at most once a minute.
officer_sessions = Table(
    "officer_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the token, hex
    Column("officer_id", String(32), ForeignKey("officers.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    # signed_out | idle | expired | signed_out_elsewhere | officer_disabled
    Column("end_reason", String(32), nullable=True),
    Column("client_address", String(64), nullable=False),
    Column("user_agent", String(255), nullable=False),
)

# Refused console sign-ins counted per client address, minute and reason, until the minute
# is written to the audit log as one event (anyone can send refusals: one event each would
# flood a log that keeps everything).
sign_in_refusals = Table(
    "sign_in_refusals",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("window_start", Integer, primary_key=True),  # Unix minute
    Column("reason", String(64), primary_key=True),  # the refusal's error class
    Column("refusals", Integer, nullable=False),
)
