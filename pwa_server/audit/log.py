"""Appending events to the audit log, and reading them back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, Engine

from pwa_server.audit.actions import ActorKind, AuditAction, Outcome
from pwa_server.audit.chain import event_hash
from pwa_server.audit.errors import AuditError
from pwa_server.store.audit import (
    AuditEventRow,
    claim_next_event,
    find_events,
    insert_event,
    set_head_hash,
)

JsonValue = str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]

# Keys whose values would be secrets: refused anywhere in `details`, so that a careless
# caller fails in its tests instead of writing a password into a log that keeps it forever.
_SECRET_KEYS = frozenset(
    {
        "answer",
        "api_key",
        "download_password",
        "one_time_password",
        "otp",
        "password",
        "pin",
        "private_key",
        "secret",
        "secret_answer",
        "token",
        "webhook_secret",
    }
)
# Column widths, checked here so that SQLite (which would store anything) fails as
# PostgreSQL does.
_WIDTHS = {"actor": 255, "subject_kind": 32, "subject": 255}


def record(
    connection: Connection,
    *,
    actor_kind: ActorKind,
    actor: str,
    action: AuditAction,
    subject_kind: str | None = None,
    subject: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: Mapping[str, JsonValue] | None = None,
    now: dt.datetime,
) -> int:
    """Append one event in the caller's transaction and return its id.

    The event exists exactly when the caller's transaction commits; a rollback leaves neither
    the event nor a gap. Appending locks the audit head until that transaction ends, which
    makes the chain strictly sequential across threads, processes and instances; so record
    the event after the change it records, near the end of the transaction, to hold the lock
    briefly and always after the caller's own row locks (no lock-order inversions).
    PostgreSQL transactions must run at READ COMMITTED (the default): at REPEATABLE READ a
    concurrent append makes the lock fail with a serialisation error.

    `details` is a JSON object of facts about the event, never secrets: keys such as
    "password" or "pin" are refused with ValueError.
    """
    kind, verb, result = ActorKind(actor_kind), AuditAction(action), Outcome(outcome)
    for column, value in (("actor", actor), ("subject_kind", subject_kind), ("subject", subject)):
        if value is not None and len(value) > _WIDTHS[column]:
            raise ValueError(f"audit {column} is longer than {_WIDTHS[column]} characters")
    if not actor:
        raise ValueError("an audit event needs an actor")
    if now.tzinfo is None:
        raise ValueError("naive datetime given where UTC was expected")
    details_text = _encode_details(details)
    claimed = claim_next_event(connection)
    if claimed is None:
        raise AuditError("the audit head row is missing: the audit log was tampered with")
    event_id, prev_hash = claimed
    event = AuditEventRow(
        id=event_id,
        # Stored and hashed in UTC; microseconds are what both databases keep.
        occurred_at=now.astimezone(dt.UTC),
        actor_kind=kind.value,
        actor=actor,
        action=verb.value,
        subject_kind=subject_kind,
        subject=subject,
        outcome=result.value,
        details=details_text,
        prev_hash=prev_hash,
        hash="",
    )
    event = dataclasses.replace(event, hash=event_hash(event))
    insert_event(connection, event)
    set_head_hash(connection, event.hash)
    return event_id


def _encode_details(details: Mapping[str, JsonValue] | None) -> str | None:
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise TypeError("audit details must be a mapping")
    _refuse_secrets(details)
    try:
        return json.dumps(
            details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"audit details are not plain JSON: {error}") from None


def _refuse_secrets(value: JsonValue) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() in _SECRET_KEYS:
                raise ValueError(f"audit details must not hold secrets (key {key!r})")
            _refuse_secrets(item)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            _refuse_secrets(item)


def events(
    engine: Engine,
    *,
    limit: int,
    action: AuditAction | str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    before_id: int | None = None,
) -> list[AuditEventRow]:
    """The newest events matching every given filter, newest first.

    Page backwards by passing the smallest id of one page as `before_id` of the next.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    with engine.connect() as connection:
        return find_events(
            connection,
            limit=limit,
            action=str(action) if action is not None else None,
            actor=actor,
            subject=subject,
            before_id=before_id,
        )
