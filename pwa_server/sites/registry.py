"""Relying sites and their API keys: registration, authentication, return URLs and the
webhook secret.

Every change, and every refused API key, is recorded in the audit log; a change in its own
transaction, after the change (the audit head is locked last). Keys and webhook secrets never
appear in an event: only key ids, and whether a secret was replaced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from pwa_server.audit import CLI, Actor, ActorKind, AuditAction, JsonValue, Outcome, record
from pwa_server.names import InvalidNameError, checked_name
from pwa_server.sites import api_keys
from pwa_server.sites.errors import (
    ApiKeyRefusedError,
    InvalidSiteInputError,
    ReturnUrlNotAllowedError,
    SiteExistsError,
    SiteNotFoundError,
)
from pwa_server.sites.urls import checked_url, checked_webhook_url
from pwa_server.store import sites as store
from pwa_server.store.sites import ApiKeyRow, SiteRow
from pwa_server.vocabulary import AccountStatus, KeyProfile

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


@dataclass(frozen=True)
class NewSite:
    """A registered site with its first API key and webhook secret (both shown once)."""

    site: SiteRow
    api_key: str
    webhook_secret: str | None


@dataclass(frozen=True)
class ApiCaller:
    """Who sent an API request: the site, through which key."""

    site: SiteRow
    key_id: str


def _checked(field: str, value: str) -> str:
    try:
        return checked_name(value)
    except InvalidNameError as error:
        raise InvalidSiteInputError(field, str(error)) from None


class SiteRegistry:
    """The sites over the database. `webhook_key` is the server's secret from which each
    site's webhook secret is derived (so the database alone cannot sign deliveries);
    `private_webhooks` lets webhooks go to loopback and private addresses (development)."""

    def __init__(
        self, engine: Engine, webhook_key: bytes, *, private_webhooks: bool = False
    ) -> None:
        self.engine = engine
        self._webhook_key = webhook_key
        self.private_webhooks = private_webhooks

    def create(
        self,
        *,
        name: str,
        display_name: str,
        return_urls: tuple[str, ...] = (),
        webhook_url: str | None = None,
        default_profile: KeyProfile = KeyProfile.DEFAULT,
        now: dt.datetime,
        actor: Actor = CLI,
    ) -> NewSite:
        """Register a site with one API key; the key and the webhook secret are shown once."""
        if not _NAME.fullmatch(name):
            raise InvalidSiteInputError(
                "name", "2 to 63 lower-case letters, digits and hyphens, not starting with -"
            )
        display_name = _checked("display_name", display_name)
        urls = tuple(dict.fromkeys(checked_url("return_url", url) for url in return_urls))
        hook = (
            checked_webhook_url(webhook_url, private_addresses=self.private_webhooks)
            if webhook_url
            else None
        )
        salt = secrets.token_hex(16) if hook else None
        key = api_keys.new_api_key()
        with self.engine.begin() as connection:
            site = store.insert_site(
                connection,
                name=name,
                display_name=display_name.strip(),
                return_urls=urls,
                webhook_url=hook,
                webhook_secret_salt=salt,
                default_profile=default_profile,
                now=now,
            )
            if site is None:
                raise SiteExistsError(f"a site called {name!r} exists already")
            store.insert_api_key(
                connection,
                key_id=key.key_id,
                site_id=site.id,
                secret_sha256=key.secret_sha256,
                label="first key",
                now=now,
            )
            _record_site_event(
                connection,
                AuditAction.SITE_CREATED,
                site,
                actor,
                {
                    "display_name": site.display_name,
                    "return_urls": list(urls),
                    "webhook_url": hook,
                    "default_profile": default_profile,
                },
                now,
            )
            _record_key_event(
                connection, AuditAction.API_KEY_CREATED, key.key_id, site, actor, "first key", now
            )
        return NewSite(site, key.text, self.webhook_secret(site))

    def site(self, name: str) -> SiteRow:
        """The site called `name`."""
        with self.engine.connect() as connection:
            site = store.site_by_name(connection, name)
        if site is None:
            raise SiteNotFoundError(f"no site called {name!r}")
        return site

    def sites(self) -> list[SiteRow]:
        with self.engine.connect() as connection:
            return store.all_sites(connection)

    def keys(self, name: str) -> list[ApiKeyRow]:
        site = self.site(name)
        with self.engine.connect() as connection:
            return store.api_keys_of_site(connection, site.id)

    def add_key(self, name: str, *, label: str, now: dt.datetime, actor: Actor = CLI) -> str:
        """A new API key for the site; its text is returned once and never stored."""
        label = _checked("label", label)
        site = self.site(name)
        key = api_keys.new_api_key()
        with self.engine.begin() as connection:
            store.insert_api_key(
                connection,
                key_id=key.key_id,
                site_id=site.id,
                secret_sha256=key.secret_sha256,
                label=label.strip(),
                now=now,
            )
            _record_key_event(
                connection, AuditAction.API_KEY_CREATED, key.key_id, site, actor, label.strip(), now
            )
        return key.text

    def revoke_key(self, key_id: str, *, now: dt.datetime, actor: Actor = CLI) -> None:
        """Revoke an API key for good."""
        with self.engine.begin() as connection:
            if not store.revoke_api_key(connection, key_id, now=now):
                raise InvalidSiteInputError("key_id", "no such active key")
            key = store.api_key_by_id(connection, key_id)
            site = store.site_by_id(connection, key.site_id) if key is not None else None
            if key is None or site is None:
                raise SiteNotFoundError(f"the site of API key {key_id!r} is gone")
            _record_key_event(
                connection, AuditAction.API_KEY_REVOKED, key_id, site, actor, key.label, now
            )

    def set_webhook(
        self,
        name: str,
        url: str | None,
        *,
        now: dt.datetime | None = None,
        actor: Actor = CLI,
    ) -> str | None:
        """Point the site's webhooks at `url` (None: none) with a new secret, returned once.

        `now` is when the change is recorded (default: the current time).
        """
        site = self.site(name)
        hook = checked_webhook_url(url, private_addresses=self.private_webhooks) if url else None
        salt = secrets.token_hex(16) if hook else None
        with self.engine.begin() as connection:
            store.update_site(connection, site.id, webhook_url=hook, webhook_secret_salt=salt)
            _record_site_event(
                connection,
                AuditAction.SITE_UPDATED,
                site,
                actor,
                {
                    "changed": "webhook_url",
                    "previous_webhook_url": site.webhook_url,
                    "webhook_url": hook,
                    "secret_rotated": hook is not None,
                },
                now or dt.datetime.now(dt.UTC),
            )
        return self._derive(salt) if salt else None

    def set_return_urls(
        self,
        name: str,
        urls: tuple[str, ...],
        *,
        now: dt.datetime | None = None,
        actor: Actor = CLI,
    ) -> None:
        """Replace the site's allowed return URLs; `now` as for `set_webhook`."""
        site = self.site(name)
        checked = tuple(dict.fromkeys(checked_url("return_url", url) for url in urls))
        with self.engine.begin() as connection:
            store.update_site(connection, site.id, return_urls=checked)
            _record_site_event(
                connection,
                AuditAction.SITE_UPDATED,
                site,
                actor,
                {
                    "changed": "return_urls",
                    "previous_return_urls": list(site.return_urls),
                    "return_urls": list(checked),
                },
                now or dt.datetime.now(dt.UTC),
            )

    def authenticate(self, key_text: str, *, now: dt.datetime) -> ApiCaller:
        """The caller behind an API key; every kind of refusal raises the same error."""
        parsed = api_keys.parse_api_key(key_text)
        if parsed is None:
            raise ApiKeyRefusedError()
        key_id, secret = parsed
        with self.engine.connect() as connection:
            key = store.api_key_by_id(connection, key_id)
            site = store.site_by_id(connection, key.site_id) if key is not None else None
        if key is None or site is None:
            # Spend the same time as a real check, so that key ids cannot be probed by timing.
            api_keys.secret_matches(secret, "0" * 64)
            raise ApiKeyRefusedError()
        if not api_keys.secret_matches(secret, key.secret_sha256):
            raise ApiKeyRefusedError()
        if key.revoked_at is not None or site.status != AccountStatus.ACTIVE:
            raise ApiKeyRefusedError()
        return ApiCaller(site, key.id)

    def record_refusal(self, key_text: str, *, client: str | None, now: dt.datetime) -> None:
        """Record a refused API key (after `authenticate` refused it), in its own transaction.

        Only the key id is kept, and only when the text has a key's form (so it is 16
        letters and digits, never arbitrary input); the site it names, if any, helps to
        spot a revoked or leaked key still in use.
        """
        parsed = api_keys.parse_api_key(key_text)
        key_id = parsed[0] if parsed is not None else None
        with self.engine.begin() as connection:
            key = store.api_key_by_id(connection, key_id) if key_id is not None else None
            site = store.site_by_id(connection, key.site_id) if key is not None else None
            record(
                connection,
                # Unauthenticated: the caller claims to be a site but could be anyone.
                actor_kind=ActorKind.SITE,
                actor="unauthenticated",
                action=AuditAction.API_KEY_REJECTED,
                subject_kind="api_key" if key_id is not None else None,
                subject=key_id,
                outcome=Outcome.FAILURE,
                details={
                    "key_id": key_id,
                    "site": site.name if site is not None else None,
                    "client": client,
                },
                now=now,
            )

    def webhook_secret(self, site: SiteRow) -> str | None:
        """The secret that signs the site's webhooks, or None when it has no webhook."""
        return self._derive(site.webhook_secret_salt) if site.webhook_secret_salt else None

    def _derive(self, salt: str) -> str:
        digest = hmac.new(self._webhook_key, b"webhook:" + salt.encode(), hashlib.sha256)
        return "whsec_" + digest.hexdigest()


def _record_site_event(
    connection: Connection,
    action: AuditAction,
    site: SiteRow,
    actor: Actor,
    details: Mapping[str, JsonValue],
    now: dt.datetime,
) -> None:
    record(
        connection,
        actor_kind=actor.kind,
        actor=actor.name,
        action=action,
        subject_kind="site",
        subject=site.name,
        details=details,
        now=now,
    )


def _record_key_event(
    connection: Connection,
    action: AuditAction,
    key_id: str,
    site: SiteRow,
    actor: Actor,
    label: str,
    now: dt.datetime,
) -> None:
    record(
        connection,
        actor_kind=actor.kind,
        actor=actor.name,
        action=action,
        subject_kind="api_key",
        subject=key_id,
        details={"site": site.name, "label": label},
        now=now,
    )


def allowed_return_url(site: SiteRow, url: str) -> str:
    """`url` if it is exactly one of the site's allowed return URLs.

    Exact comparison, as OAuth 2.0 Security BCP asks of redirect URIs: prefix rules let
    `https://site/cb` admit `https://site/cb.evil` or an open redirect below it.
    """
    if url not in site.return_urls:
        raise ReturnUrlNotAllowedError()
    return url
