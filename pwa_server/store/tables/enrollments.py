"""Enrollments and the messages that report them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, false

from pwa_server.store.tables.base import UTCDateTime, metadata, words
from pwa_server.vocabulary import EnrollmentStatus, KeyProfile

# One invitation to put a certificate on a phone, and where it stands. Secrets are stored only
# as Argon2id hashes; counters change by conditional UPDATEs so that concurrent requests
# can never exceed a limit.
enrollments = Table(
    "enrollments",
    metadata,
    Column("id", String(32), primary_key=True),  # random, in the enrollment URL
    Column("user_id", String(255), nullable=False),  # the site's user id
    Column("email", String(320), nullable=False),
    Column("display_name", String(255), nullable=True),
    Column("profile", words(KeyProfile, 32), nullable=False),
    Column("certificate_user_id", String(64), nullable=False, unique=True),  # our CN
    Column("status", words(EnrollmentStatus, 24), nullable=False),
    Column("one_time_password_hash", String(255), nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),  # the issuance notice date
    Column("otp_verified_at", UTCDateTime, nullable=True),
    Column("secret_question", String(32), nullable=True),
    Column("secret_answer_hash", String(255), nullable=True),
    Column("download_password_hash", String(255), nullable=True),
    Column("download_password_issued_at", UTCDateTime, nullable=True),
    Column("downloads", Integer, nullable=False),
    Column("first_download_at", UTCDateTime, nullable=True),
    Column("download_deadline", UTCDateTime, nullable=True),
    Column("installed_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # Set when a relying site created it: only that site may see or change it.
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=True, index=True),
    Column("return_url", String(2048), nullable=True),  # one of the site's allowed URLs
    # A renewal (seed 004): the next download leaves the previous certificate valid.
    Column("keep_previous_certificate", Boolean, nullable=False, server_default=false()),
    # When the latest download guide (the issuance notice) was mailed: validity counts from it.
    Column("issuance_notice_at", UTCDateTime, nullable=True),
    # Guesses counted but not yet judged; they stop counting when the lease runs out (a worker
    # that died mid-check never gives a verdict).
    Column("guesses_in_flight", Integer, nullable=False, server_default="0"),
    Column("guess_lease_until", UTCDateTime, nullable=True),
)

# The transactional outbox: written in the same transaction as the change it reports,
# delivered afterwards by a background sender with retries.
outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(16), nullable=False),  # mail | webhook
    Column("destination", String(2048), nullable=False),
    Column("subject", String(998), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("failed_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    # Webhooks: the site the event belongs to (its secret signs the delivery).
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=True, index=True),
    Index("ix_outbox_messages_due", "channel", "next_attempt_at"),
)
