"""The database schema, in SQLAlchemy Core, one module an area. Alembic migrations create
exactly these tables: importing this package defines all of them in `metadata`."""

from pwa_server.store.tables.audit import audit_events, audit_head, audit_keys, audit_seals
from pwa_server.store.tables.authorities import certificate_authorities, certificates, crl_state
from pwa_server.store.tables.base import UTCDateTime, metadata
from pwa_server.store.tables.ceremonies import ceremony_approvals, key_ceremonies
from pwa_server.store.tables.enrollments import enrollments, outbox_messages
from pwa_server.store.tables.limits import client_rate_buckets, guess_throttles
from pwa_server.store.tables.officers import (
    invitation_approvals,
    officer_credentials,
    officer_invitations,
    officer_sessions,
    officers,
    sign_in_refusals,
)
from pwa_server.store.tables.sites import (
    api_keys,
    api_rate_windows,
    idempotency_keys,
    redeemed_assertions,
    sites,
)

__all__ = [
    "UTCDateTime",
    "api_keys",
    "api_rate_windows",
    "audit_events",
    "audit_head",
    "audit_keys",
    "audit_seals",
    "ceremony_approvals",
    "certificate_authorities",
    "certificates",
    "client_rate_buckets",
    "crl_state",
    "enrollments",
    "guess_throttles",
    "idempotency_keys",
    "invitation_approvals",
    "key_ceremonies",
    "metadata",
    "officer_credentials",
    "officer_invitations",
    "officer_sessions",
    "officers",
    "outbox_messages",
    "redeemed_assertions",
    "sign_in_refusals",
    "sites",
]
