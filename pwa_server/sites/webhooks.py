"""Webhook events: written to the outbox in the transaction of the change they report.

Each event is a JSON document `{"id", "type", "created_at", "data"}`; the delivery signs it
when it is sent (see `webhook_delivery`), so that a retry hours later carries a fresh
timestamp inside the receiver's replay window.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import secrets
from typing import Any

from sqlalchemy import Connection, select

from pwa_server.notify.outbox import enqueue
from pwa_server.store.tables import enrollments, sites

WEBHOOK = "webhook"


class EventType(enum.StrEnum):
    """The events a site can hear of."""

    ENROLLMENT_INSTALLED = "enrollment.installed"
    ENROLLMENT_LOCKED = "enrollment.locked"
    CERTIFICATE_ISSUED = "certificate.issued"
    CERTIFICATE_REVOKED = "certificate.revoked"


def enqueue_event(
    connection: Connection,
    *,
    enrollment_id: str,
    event: EventType,
    data: dict[str, Any],
    now: dt.datetime,
) -> int | None:
    """Queue `event` for the site that created the enrollment; None when there is no such
    site or it has no webhook. `data` gets the enrollment's id and the site's user id."""
    row = connection.execute(
        select(sites.c.id, sites.c.webhook_url, enrollments.c.user_id)
        .select_from(enrollments.join(sites, enrollments.c.site_id == sites.c.id))
        .where(enrollments.c.id == enrollment_id)
    ).one_or_none()
    if row is None or row.webhook_url is None:
        return None
    body = {
        "id": "evt_" + secrets.token_hex(12),
        "type": event.value,
        "created_at": now.isoformat(),
        "data": {"enrollment_id": enrollment_id, "user_id": row.user_id} | data,
    }
    return enqueue(
        connection,
        channel=WEBHOOK,
        destination=row.webhook_url,
        subject=event.value,
        body=json.dumps(body, separators=(",", ":"), sort_keys=True),
        site_id=row.id,
        now=now,
    )
