"""Rows of relying sites, their API keys, request windows and idempotency keys."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pwa_server.store.tables import api_keys, api_rate_windows, idempotency_keys, sites
from pwa_server.vocabulary import AccountStatus, KeyProfile


@dataclass(frozen=True)
class SiteRow:
    """A relying site as stored."""

    id: int
    name: str
    display_name: str
    return_urls: tuple[str, ...]
    webhook_url: str | None
    webhook_secret_salt: str | None
    default_profile: KeyProfile
    status: AccountStatus
    created_at: dt.datetime


@dataclass(frozen=True)
class ApiKeyRow:
    """An API key as stored: its public id and the hash of its secret."""

    id: str
    site_id: int
    secret_sha256: str
    label: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def _site(row: object) -> SiteRow:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["return_urls"] = tuple(json.loads(values["return_urls"]))
    return SiteRow(**values)


def insert_site(
    connection: Connection,
    *,
    name: str,
    display_name: str,
    return_urls: tuple[str, ...],
    webhook_url: str | None,
    webhook_secret_salt: str | None,
    default_profile: KeyProfile,
    now: dt.datetime,
) -> SiteRow | None:
    """Record a new active site; None when the name is taken."""
    try:
        with connection.begin_nested():
            result = connection.execute(
                insert(sites).values(
                    name=name,
                    display_name=display_name,
                    return_urls=json.dumps(list(return_urls)),
                    webhook_url=webhook_url,
                    webhook_secret_salt=webhook_secret_salt,
                    default_profile=default_profile,
                    status=AccountStatus.ACTIVE,
                    created_at=now,
                )
            )
    except IntegrityError:
        return None
    inserted = result.inserted_primary_key
    if inserted is None:
        raise RuntimeError("the database returned no id for the new site")
    return site_by_id(connection, int(inserted[0]))


def site_by_id(connection: Connection, site_id: int) -> SiteRow | None:
    row = connection.execute(select(sites).where(sites.c.id == site_id)).one_or_none()
    return _site(row) if row is not None else None


def site_by_name(connection: Connection, name: str) -> SiteRow | None:
    row = connection.execute(select(sites).where(sites.c.name == name)).one_or_none()
    return _site(row) if row is not None else None


def all_sites(connection: Connection) -> list[SiteRow]:
    return [_site(row) for row in connection.execute(select(sites).order_by(sites.c.name))]


def update_site(connection: Connection, site_id: int, **values: object) -> None:
    """Change a site's settings (return URLs are given as a tuple)."""
    if "return_urls" in values:
        values["return_urls"] = json.dumps(list(values["return_urls"]))  # type: ignore[call-overload]
    connection.execute(update(sites).where(sites.c.id == site_id).values(**values))


def insert_api_key(
    connection: Connection,
    *,
    key_id: str,
    site_id: int,
    secret_sha256: str,
    label: str,
    now: dt.datetime,
) -> None:
    connection.execute(
        insert(api_keys).values(
            id=key_id, site_id=site_id, secret_sha256=secret_sha256, label=label, created_at=now
        )
    )


def api_key_by_id(connection: Connection, key_id: str) -> ApiKeyRow | None:
    row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).one_or_none()
    return ApiKeyRow(**row._mapping) if row is not None else None


def api_keys_of_site(connection: Connection, site_id: int) -> list[ApiKeyRow]:
    rows = connection.execute(
        select(api_keys).where(api_keys.c.site_id == site_id).order_by(api_keys.c.created_at)
    )
    return [ApiKeyRow(**row._mapping) for row in rows]


def revoke_api_key(connection: Connection, key_id: str, *, now: dt.datetime) -> bool:
    """Revoke a key for good; False when it was unknown or already revoked."""
    result = connection.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def touch_api_key(connection: Connection, key_id: str, *, now: dt.datetime) -> None:
    connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


def count_request(connection: Connection, key_id: str, *, window_start: int) -> int:
    """Count one request of the key in its window; returns the count including this one.

    An UPDATE first (the common case), an INSERT for the window's first request; two
    first requests at once make one INSERT fail, and it is retried as an UPDATE.
    """
    for _ in range(2):
        result = connection.execute(
            update(api_rate_windows)
            .where(
                api_rate_windows.c.key_id == key_id,
                api_rate_windows.c.window_start == window_start,
            )
            .values(requests=api_rate_windows.c.requests + 1)
            .returning(api_rate_windows.c.requests)
        )
        counted = result.scalar_one_or_none()
        if counted is not None:
            return int(counted)
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(api_rate_windows).values(
                        key_id=key_id, window_start=window_start, requests=1
                    )
                )
        except IntegrityError:
            continue
        connection.execute(
            delete(api_rate_windows).where(
                api_rate_windows.c.key_id == key_id,
                api_rate_windows.c.window_start < window_start,
            )
        )
        return 1
    raise RuntimeError("could not count the request")


@dataclass(frozen=True)
class IdempotencyRow:
    """The enrollment a site's Idempotency-Key created, and the request that created it."""

    request_sha256: str
    enrollment_id: str
    created_at: dt.datetime


def idempotency_key(connection: Connection, site_id: int, key: str) -> IdempotencyRow | None:
    row = connection.execute(
        select(
            idempotency_keys.c.request_sha256,
            idempotency_keys.c.enrollment_id,
            idempotency_keys.c.created_at,
        ).where(idempotency_keys.c.site_id == site_id, idempotency_keys.c.key == key)
    ).one_or_none()
    return IdempotencyRow(**row._mapping) if row is not None else None


def insert_idempotency_key(
    connection: Connection,
    *,
    site_id: int,
    key: str,
    request_sha256: str,
    enrollment_id: str,
    now: dt.datetime,
) -> None:
    """Record the key; raises IntegrityError when a concurrent request recorded it first."""
    connection.execute(
        insert(idempotency_keys).values(
            site_id=site_id,
            key=key,
            request_sha256=request_sha256,
            enrollment_id=enrollment_id,
            created_at=now,
        )
    )


def forget_idempotency_keys(connection: Connection, *, before: dt.datetime) -> None:
    connection.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < before))
