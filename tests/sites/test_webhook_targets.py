"""Webhooks go only to public addresses: literal addresses refused when a site registers
them, names resolved and checked again at every delivery, and the site shown only the
class of a failed attempt (so that webhooks cannot scan what the server can reach)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket

import pytest
from sqlalchemy import Engine

from pwa_server.notify.outbox import claim_due, enqueue
from pwa_server.notify.transports import DeliveryError
from pwa_server.sites.errors import InvalidSiteInputError
from pwa_server.sites.registry import SiteRegistry
from pwa_server.sites.webhook_delivery import WebhookDelivery, error_class
from pwa_server.sites.webhook_target import webhook_target
from pwa_server.sites.webhooks import WEBHOOK
from pwa_server.store.sites import update_site

NOW = dt.datetime(2025, 4, 1, 9, 0, 0, tzinfo=dt.UTC)
KEY = bytes(range(32))
REFUSED_URLS = [
    "https://127.0.0.1:9000/hook",
    "http://localhost:9000/hook",
    "https://[::1]/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "https://[fd00::1]/hook",
    "https://0.0.0.0/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://api.localhost/hook",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_webhook_to_this_machine_or_a_private_network_is_refused_at_registration(
    engine: Engine, url: str
) -> None:
    registry = SiteRegistry(engine, KEY)
    with pytest.raises(InvalidSiteInputError):
        registry.create(name="shop", display_name="Shop", webhook_url=url, now=NOW)


def test_a_webhook_to_a_public_name_is_accepted(engine: Engine) -> None:
    registry = SiteRegistry(engine, KEY)
    site = registry.create(
        name="shop", display_name="Shop", webhook_url="https://shop.example/hook", now=NOW
    )
    assert site.site.webhook_url == "https://shop.example/hook"


def test_the_development_setting_allows_private_webhooks(engine: Engine) -> None:
    registry = SiteRegistry(engine, KEY, private_webhooks=True)
    site = registry.create(
        name="shop", display_name="Shop", webhook_url="http://127.0.0.1:9000/hook", now=NOW
    )
    assert site.site.webhook_url == "http://127.0.0.1:9000/hook"


def test_a_name_resolving_to_loopback_is_refused_at_delivery() -> None:
    with pytest.raises(DeliveryError, match=r"^address not allowed"):
        asyncio.run(webhook_target("https://localhost:9000/hook", private_addresses=False))


def test_a_delivery_connects_to_the_address_it_checked_with_the_name_in_host_and_sni() -> None:
    target = asyncio.run(
        webhook_target("https://93.184.215.14:8443/hook?x=1", private_addresses=False)
    )
    assert target.url == "https://93.184.215.14:8443/hook?x=1"
    assert target.headers == {"host": "93.184.215.14:8443"}
    assert target.extensions == {"sni_hostname": "93.184.215.14"}


def test_a_site_whose_name_now_points_at_loopback_gets_no_connection(engine: Engine) -> None:
    """A name that was public at registration and resolves to 127.0.0.1 today (DNS changed,
    or rebinding): the delivery refuses it before connecting."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    registry = SiteRegistry(engine, KEY)
    site = registry.create(
        name="shop", display_name="Shop", webhook_url="https://shop.example/hook", now=NOW
    ).site
    with engine.begin() as connection:
        update_site(connection, site.id, webhook_url=f"https://localhost:{port}/hook")
        enqueue(
            connection,
            channel=WEBHOOK,
            destination=f"https://localhost:{port}/hook",
            subject="enrollment.created",
            body="{}",
            now=NOW,
            site_id=site.id,
        )
    (message,) = claim_due(engine, now=NOW, lease=dt.timedelta(minutes=1), limit=1, channel=WEBHOOK)

    async def deliver() -> None:
        async with WebhookDelivery(registry, clock=lambda: NOW) as delivery:
            await delivery(message)

    with pytest.raises(DeliveryError, match=r"^address not allowed"):
        asyncio.run(deliver())
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("HTTP 500 Internal Server Error", "HTTP 5xx"),
        ("HTTP 302 Found: redirects are not followed", "HTTP 3xx"),
        ("ConnectError: [Errno 111] Connection refused", "not delivered"),
        ("ConnectError: [SSL: WRONG_VERSION_NUMBER] wrong version number", "not delivered"),
        ("ReadTimeout", "no answer in time"),
        ("address not allowed: the URL names a non-public address", "address not allowed"),
        (None, None),
    ],
)
def test_the_site_sees_only_the_class_of_a_failed_attempt(
    error: str | None, shown: str | None
) -> None:
    assert error_class(error) == shown
