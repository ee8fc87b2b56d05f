"""The database schema, in SQLAlchemy Core. Alembic migrations create exactly these tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A CA whose private key lives in the token, recorded by reference (never a PIN).
certificate_authorities = Table(
    "certificate_authorities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # root | issuing
    Column("parent_id", Integer, ForeignKey("certificate_authorities.id"), nullable=True),
    Column("key_token_label", String(32), nullable=False),
    Column("key_label", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("key_algorithm", String(16), nullable=False),
    Column("certificate_der", LargeBinary, nullable=False),
    Column("sha256_fingerprint", String(64), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # active | retired
    Column("created_at", UTCDateTime, nullable=False),
)

# Every certificate a CA of ours signed, written before any byte of it leaves the server.
certificates = Table(
    "certificates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issuer_id", Integer, ForeignKey("certificate_authorities.id"), nullable=False),
    Column("serial", String(42), nullable=False),  # lower-case hex, up to 20 octets
    Column("profile", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("not_after", UTCDateTime, nullable=False),
    Column("certificate_der", LargeBinary, nullable=False),
    Column("sha256_fingerprint", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # valid | revoked
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revocation_reason", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("enrollment_id", String(32), ForeignKey("enrollments.id"), nullable=True),
    UniqueConstraint("issuer_id", "serial", name="uq_certificates_issuer_serial"),
    # The CRL reads one CA's revoked certificates in id order straight from this index: with
    # only the unique index above, the database fetches every certificate of the CA and sorts.
    Index("ix_certificates_issuer_status_id", "issuer_id", "status", "id"),
)

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
    Column("default_profile", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # active | disabled
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

# Token buckets per client address (an IPv6 /64) and purpose, in front of the forms that
# check a secret and of officer sign-in: shared by every worker and instance.
client_rate_buckets = Table(
    "client_rate_buckets",
    metadata,
    Column("bucket", String(80), primary_key=True),  # "<purpose> <address or /64>"
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False, index=True),  # Unix seconds
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
    Column("profile", String(32), nullable=False),
    Column("certificate_user_id", String(64), nullable=False, unique=True),  # our CN
    Column("status", String(24), nullable=False),
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

# The current CRL of each CA, shared by every worker and instance. crl_number is the number
# claimed last and only grows; a CRL is built after its claim is committed, and kept only if no
# revocation was counted in generation meanwhile and no newer CRL (stored_number) was kept.
crl_state = Table(
    "crl_state",
    metadata,
    Column("authority_id", Integer, ForeignKey("certificate_authorities.id"), primary_key=True),
    Column("crl_number", Integer, nullable=False),
    Column("crl_der", LargeBinary, nullable=True),
    Column("this_update", UTCDateTime, nullable=True),
    Column("next_update", UTCDateTime, nullable=True),
    Column("stale", Boolean, nullable=False),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("stored_number", Integer, nullable=True),
)

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

# Officers of the console. They sign in with WebAuthn keys only; the id is also the WebAuthn
# user handle (random, so that it says nothing about the person).
officers = Table(
    "officers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("display_name", String(255), nullable=False),
    Column("role", String(32), nullable=False),  # security_officer | registration_officer | auditor
    Column("status", String(16), nullable=False),  # active | disabled
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

# A key ceremony: a change to the CA keys (a new issuing CA, retiring one) that runs only once
# enough distinct security officers approved it. The number needed is fixed when it is
# proposed; it leaves "open" by one conditional UPDATE, so that it runs at most once.
key_ceremonies = Table(
    "key_ceremonies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),  # new_issuing_ca | retire_issuing_ca
    # The issuing CA that is retired, or that the new one replaces (None: there was none).
    Column("target_authority_id", Integer, ForeignKey("certificate_authorities.id"), nullable=True),
    Column("proposed_by", String(32), ForeignKey("officers.id"), nullable=False),
    Column("proposed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("required_approvals", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # open | executed | expired | rejected | failed
    # Who executed or rejected it, and when it left "open" (for an expired one: expires_at).
    Column("closed_by", String(32), ForeignKey("officers.id"), nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("result", Text, nullable=True),  # the new or retired CA's fingerprint, or the error
)

# One security officer's approval of a key ceremony (the proposal counts as the proposer's);
# the primary key lets each officer approve a ceremony once.
ceremony_approvals = Table(
    "ceremony_approvals",
    metadata,
    Column("ceremony_id", Integer, ForeignKey("key_ceremonies.id"), primary_key=True),
    Column("officer_id", String(32), ForeignKey("officers.id"), primary_key=True),
    Column("approved_at", UTCDateTime, nullable=False),
)
