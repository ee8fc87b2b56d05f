"""Webhook delivery: sign each due event with its site's secret and POST it.

Every delivery is one HTTP POST of the stored event (the body bytes are exactly the stored
JSON, UTF-8) with these headers:

    Content-Type: application/json
    Shomei-Event: <event type, e.g. certificate.issued>
    Shomei-Delivery: <outbox message id; the same on every retry, for de-duplication>
    Shomei-Timestamp: <unix seconds at send time>
    Shomei-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

The HMAC key is the site's whole webhook secret (`whsec_<hex>`, as shown at registration)
encoded as UTF-8; the signed message is the timestamp's decimal digits, a full stop, and the
body bytes. Receivers recompute it, compare in constant time, and reject a timestamp more
than 300 s from their own clock (the replay window); `verify_signature` is the reference.

The signature is made at send time, so that a retry hours later still falls inside the
window, and the secret is derived then from the site row (`SiteRegistry.webhook_secret`):
the database alone cannot sign. The POST goes to the site's current webhook URL, since the
URL and the secret change together (`SiteRegistry.set_webhook`); a site without a webhook
any more, a disabled or deleted site, and a 410 Gone answer fail the message for good. Any
other non-2xx answer, a timeout or a connection error is a failed attempt, retried with the
outbox's backoff. Redirects are not followed: the signed event goes to the registered URL
or nowhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from types import TracebackType

import httpx
from sqlalchemy import Engine, select

from pwa_server.notify.outbox import OutboxMessage
from pwa_server.notify.sender import BATCH, run_channel_sender, utc_now
from pwa_server.notify.transports import DeliveryError
from pwa_server.sites.registry import SiteRegistry
from pwa_server.sites.webhook_target import ADDRESS_REFUSED, webhook_target
from pwa_server.sites.webhooks import WEBHOOK
from pwa_server.store.sites import SiteRow, site_by_id
from pwa_server.store.tables import outbox_messages
from pwa_server.vocabulary import AccountStatus

# One attempt may take at most this long, from connecting to the answer's status line. The
# sender's lease must outlast a batch of them (notify.sender: BATCH * TIMEOUT < LEASE).
TIMEOUT = 10.0
REPLAY_WINDOW = 300
SIGNATURE_SCHEME = "v1"
USER_AGENT = "Shomei-Webhooks/1"


def sign(secret: str, timestamp: int, body: bytes | str) -> str:
    """The `Shomei-Signature` value of `body` sent at `timestamp`: `v1=<hex>`."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    signed = str(timestamp).encode("ascii") + b"." + raw
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def signed_headers(secret: str, message: OutboxMessage, *, timestamp: int) -> dict[str, str]:
    """The headers of one delivery of `message`, signed at `timestamp` (unix seconds)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Shomei-Event": message.subject or "",
        "Shomei-Delivery": str(message.id),
        "Shomei-Timestamp": str(timestamp),
        "Shomei-Signature": sign(secret, timestamp, message.body),
    }


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes | str,
    signature_header: str,
    *,
    now: dt.datetime,
    tolerance: int = REPLAY_WINDOW,
) -> bool:
    """True when `signature_header` signs `body` at `timestamp` with `secret`, and
    `timestamp` is within `tolerance` seconds of `now`.

    The receiver's side, as the README shows it: `timestamp` and `signature_header` are
    the Shomei-Timestamp and Shomei-Signature headers as received, `body` the raw request
    body. The header may list several comma-separated `scheme=hex` values (room for a second
    secret or scheme later); any matching v1 value is enough.
    """
    # Digits only: int() would also take " 12", "+12" or "١٢", which no sender of ours writes.
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(now.timestamp() - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body).encode("ascii")
    return any(
        hmac.compare_digest(expected, candidate.strip().encode("utf-8"))
        for candidate in signature_header.split(",")
    )


class WebhookDelivery:
    """The `Deliver` of the webhook channel, with one HTTP client for all its deliveries;
    close it with `aclose` (or use it as an async context manager).

    `clock` gives the signing time (tests move it).
    """

    def __init__(
        self, registry: SiteRegistry, *, clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT,
            follow_redirects=False,
            # No HTTP_PROXY or SSL_CERT_FILE from the environment: configuration is read in
            # settings.py only (a proxy for webhooks would be a setting there).
            trust_env=False,
        )

    async def __aenter__(self) -> WebhookDelivery:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client and its pooled connections."""
        await self._client.aclose()

    async def __call__(self, message: OutboxMessage) -> None:
        """POST `message` to its site's webhook; raise DeliveryError unless answered 2xx."""
        site = await asyncio.to_thread(self._site_of, message)
        url, secret = self._target(site)
        target = await webhook_target(url, private_addresses=self._registry.private_webhooks)
        headers = {
            **signed_headers(secret, message, timestamp=int(self._clock().timestamp())),
            **target.headers,
        }
        try:
            # httpx's timeout bounds each phase; this bounds the whole attempt, so that a
            # receiver trickling its answer cannot hold the claim past the lease.
            async with (
                asyncio.timeout(TIMEOUT),
                self._client.stream(
                    "POST",
                    target.url,
                    content=message.body.encode("utf-8"),
                    headers=headers,
                    extensions=target.extensions,
                ) as response,
            ):
                # The answer's body is never read: only the status matters, and a large
                # body should cost us nothing.
                status, reason = response.status_code, response.reason_phrase
        except TimeoutError:
            raise DeliveryError(f"no answer within {TIMEOUT:g} s") from None
        except httpx.HTTPError as error:
            # Some httpx errors have no text; their class name (ConnectError, ...) still says
            # what went wrong.
            detail = str(error)
            name = type(error).__name__
            raise DeliveryError(f"{name}: {detail}" if detail else name) from None
        _judge(status, reason)

    def _site_of(self, message: OutboxMessage) -> SiteRow:
        if message.site_id is None:
            raise DeliveryError("the webhook message names no site", permanent=True)
        with self._registry.engine.connect() as connection:
            site = site_by_id(connection, message.site_id)
        if site is None:
            raise DeliveryError(f"site {message.site_id} no longer exists", permanent=True)
        return site

    def _target(self, site: SiteRow) -> tuple[str, str]:
        if site.status != AccountStatus.ACTIVE:
            raise DeliveryError(f"site {site.name} is {site.status}", permanent=True)
        secret = self._registry.webhook_secret(site)
        if site.webhook_url is None or secret is None:
            raise DeliveryError(f"site {site.name} has no webhook any more", permanent=True)
        return site.webhook_url, secret


def _judge(status: int, reason: str) -> None:
    """Nothing for 2xx; otherwise the DeliveryError that the answer calls for."""
    if 200 <= status < 300:
        return
    answer = f"HTTP {status} {reason}".rstrip()
    if status == 410:
        # The receiver says the endpoint is gone for good: retrying cannot help.
        raise DeliveryError(f"{answer}: the receiver refuses further deliveries", permanent=True)
    if 300 <= status < 400:
        raise DeliveryError(f"{answer}: redirects are not followed")
    raise DeliveryError(answer)


def error_class(last_error: str | None) -> str | None:
    """What the site itself is shown of a failed attempt: the class of the answer, never the
    error's text. The text (which port refused, how the TLS handshake failed) would make the
    webhook a scanner of whatever the server can reach; officers see it in full."""
    if last_error is None:
        return None
    if last_error.startswith("HTTP ") and last_error[5:6].isdigit():
        return f"HTTP {last_error[5]}xx"
    if last_error.startswith(ADDRESS_REFUSED):
        return ADDRESS_REFUSED
    if "no answer within" in last_error or "Timeout" in last_error:
        return "no answer in time"
    return "not delivered"


async def run_webhook_sender(
    registry: SiteRegistry,
    *,
    stop: asyncio.Event,
    interval: float = 2.0,
    clock: Callable[[], dt.datetime] = utc_now,
    limit: int = BATCH,
) -> None:
    """Deliver due webhook events every `interval` seconds until `stop` is set, through the
    outbox's shared sender loop (claims, backoff, release) on the registry's database; the
    HTTP client is closed at the end."""
    async with WebhookDelivery(registry, clock=clock) as deliver:
        await run_channel_sender(
            registry.engine,
            WEBHOOK,
            deliver,
            stop=stop,
            interval=interval,
            clock=clock,
            limit=limit,
        )


def list_deliveries(engine: Engine, *, site_id: int, limit: int = 50) -> list[OutboxMessage]:
    """The site's most recent webhook messages, newest first, in every state (pending,
    delivered, failed), with their attempts and last error."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(outbox_messages)
            .where(outbox_messages.c.channel == WEBHOOK, outbox_messages.c.site_id == site_id)
            .order_by(outbox_messages.c.created_at.desc(), outbox_messages.c.id.desc())
            .limit(limit)
        )
        return [OutboxMessage(**row._mapping) for row in rows]
