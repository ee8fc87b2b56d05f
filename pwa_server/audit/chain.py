"""The exact bytes that are hashed (events) and signed (seals).

Event hash, version 1
    SHA-256, written as 64 lower-case hex digits, of the UTF-8 bytes of a JSON object holding
    every column of the event except `hash`:

        {"action": str, "actor": str, "actor_kind": str, "details": str | null,
         "id": int, "occurred_at": str, "outcome": str, "prev_hash": str,
         "subject": str | null, "subject_kind": str | null}

    serialised with sorted keys, no whitespace (separators "," and ":") and every non-ASCII
    character escaped as \\uXXXX (lower-case hex, UTF-16 surrogate pairs above U+FFFF): that is
    Python's json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).
    `occurred_at` is ISO 8601 in UTC with microseconds and a Z: "2025-04-01T12:00:00.000000Z".
    `details` is the stored JSON text itself (a string), not the object it encodes, so that
    the hash never depends on how a reader re-serialises it. The first event's prev_hash is
    GENESIS_HASH (64 zeros); every other event's is the hash of the event before it.

Seal message, version 1
    The bytes ECDSA P-256 with SHA-256 signs, the same JSON serialisation of

        {"event_hash": str, "event_id": int, "signed_at": str, "type": "shomei-audit-seal"}

    with `signed_at` in the format of `occurred_at`. The type keeps a seal signature from
    being usable as any other signature the key might ever make.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from pwa_server.store.audit import AuditEventRow

GENESIS_HASH = "0" * 64
SEAL_TYPE = "shomei-audit-seal"


def timestamp(moment: dt.datetime) -> str:
    """A moment as the hashed encodings write it: ISO 8601, UTC, microseconds, Z."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where UTC was expected")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: dict[str, Any]) -> bytes:
    """The one serialisation every hashed or signed object uses (see the module docstring)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def event_bytes(event: AuditEventRow) -> bytes:
    """What an event's hash is computed over: all of its columns except the hash itself."""
    return canonical_json(
        {
            "id": event.id,
            "occurred_at": timestamp(event.occurred_at),
            "actor_kind": event.actor_kind,
            "actor": event.actor,
            "action": event.action,
            "subject_kind": event.subject_kind,
            "subject": event.subject,
            "outcome": event.outcome,
            "details": event.details,
            "prev_hash": event.prev_hash,
        }
    )


def event_hash(event: AuditEventRow) -> str:
    """The hash an event must carry, recomputed from its other columns (its `hash` is ignored)."""
    return hashlib.sha256(event_bytes(event)).hexdigest()


def seal_message(*, event_id: int, event_hash: str, signed_at: dt.datetime) -> bytes:
    """The bytes a seal signs: the head's event id and hash, and when it was signed."""
    return canonical_json(
        {
            "type": SEAL_TYPE,
            "event_id": event_id,
            "event_hash": event_hash,
            "signed_at": timestamp(signed_at),
        }
    )
