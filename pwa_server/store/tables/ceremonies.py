"""Key ceremonies under dual control and their approvals."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text

from pwa_server.store.tables.base import UTCDateTime, metadata, words
from pwa_server.vocabulary import CeremonyKind, CeremonyStatus

# A key ceremony: a change to the CA keys (a new issuing CA, retiring one) that runs only once
# enough distinct security officers approved it. The number needed is fixed when it is
# proposed; it leaves "open" by one conditional UPDATE, so that it runs at most once.
key_ceremonies = Table(
    "key_ceremonies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", words(CeremonyKind, 32), nullable=False),
    # The issuing CA that is retired, or that the new one replaces (None: there was none).
    Column("target_authority_id", Integer, ForeignKey("certificate_authorities.id"), nullable=True),
    Column("proposed_by", String(32), ForeignKey("officers.id"), nullable=False),
    Column("proposed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("required_approvals", Integer, nullable=False),
    Column("status", words(CeremonyStatus, 16), nullable=False),
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
