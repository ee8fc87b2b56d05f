"""Webhook delivery to a real HTTP receiver on loopback, on SQLite and PostgreSQL: the
documented headers and signature (checked with the README's own code), retries with
backoff, permanent failures, and claims that keep concurrent senders from sending twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from pwa_server.notify.outbox import OutboxMessage, claim_due, enqueue, message_by_id
from pwa_server.notify.sender import deliver_channel_due
from pwa_server.sites import webhook_delivery
from pwa_server.sites.registry import SiteRegistry
from pwa_server.sites.webhook_delivery import (
    WebhookDelivery,
    list_deliveries,
    run_webhook_sender,
    sign,
    verify_signature,
)
from pwa_server.sites.webhooks import WEBHOOK, EventType, enqueue_event
from pwa_server.store.database import create_database_engine
from pwa_server.store.enrollments import insert_enrollment
from pwa_server.store.sites import SiteRow, update_site
from testbed.serving import free_port

NOW = dt.datetime(2025, 4, 1, 9, 0, 0, tzinfo=dt.UTC)
README = Path(__file__).resolve().parents[2] / "README.md"
WEBHOOK_KEY = bytes(range(32))

Verify = Callable[..., bool]


# --- a real receiver -----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on loopback that records requests and answers with the queued statuses
    (200 once the queue is empty)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self, request: Received) -> int:
        with self.lock:
            self.requests.append(request)
            return self.answers.pop(0) if self.answers else 200

    def deliveries(self) -> list[str]:
        """The Shomei-Delivery header of every request received, in order."""
        with self.lock:
            return [request.headers["shomei-delivery"] for request in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A ThreadingHTTPServer on 127.0.0.1, stopped and closed afterwards."""
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = state[0].next_answer(Received("POST", self.path, headers, body))
            time.sleep(state[0].delay)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the recorded requests instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/shomei"))
    # A short poll interval: shutdown() waits for the serving loop's next look at its flag.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield state[0]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- database, sites and messages ----------------------------------------------------------


@pytest.fixture
def registry(engine: Engine) -> SiteRegistry:
    return SiteRegistry(engine, WEBHOOK_KEY, private_webhooks=True)


def make_site(registry: SiteRegistry, webhook_url: str | None, name: str = "shop") -> SiteRow:
    return registry.create(name=name, display_name="Shop", webhook_url=webhook_url, now=NOW).site


def enqueue_webhook(engine: Engine, site: SiteRow, *, number: int = 0) -> int:
    """A webhook message as enqueue_event writes it, for `site`."""
    body = {
        "id": f"evt_{number:024x}",
        "type": "enrollment.locked",
        "created_at": NOW.isoformat(),
        "data": {"enrollment_id": f"e{number}", "user_id": "u-1", "failed_attempts": 6},
    }
    with engine.begin() as connection:
        return enqueue(
            connection,
            channel=WEBHOOK,
            destination=site.webhook_url or "",
            subject="enrollment.locked",
            body=json.dumps(body, separators=(",", ":"), sort_keys=True),
            site_id=site.id,
            now=NOW,
        )


def stored(engine: Engine, message_id: int) -> OutboxMessage:
    with engine.connect() as connection:
        message = message_by_id(connection, message_id)
    assert message is not None
    return message


def deliver_once(
    registry: SiteRegistry, now: dt.datetime, clock: Callable[[], dt.datetime] | None = None
) -> int:
    """One round of the webhook sender at `now`, signing with `clock` (default: `now`)."""

    async def round_() -> int:
        async with WebhookDelivery(registry, clock=clock or (lambda: now)) as deliver:
            return await deliver_channel_due(registry.engine, WEBHOOK, deliver, now=now)

    return asyncio.run(round_())


# --- the README's recipe -------------------------------------------------------------------


def readme_verify_signature() -> Verify:
    """`verify_signature` as defined by the Python block of the README's Webhooks section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n### Webhooks\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README
    function: Verify = namespace["verify_signature"]
    assert callable(function)
    return function


def module_verify(
    secret: str, timestamp: str, body: bytes, header: str, now: float | None = None
) -> bool:
    """The module's reference implementation, called like the README's."""
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    return verify_signature(secret, timestamp, body, header, now=moment)


VERIFIERS = pytest.mark.parametrize(
    "verify", [readme_verify_signature(), module_verify], ids=["readme", "module"]
)


# --- what a receiver gets ------------------------------------------------------------------


def test_a_delivered_event_carries_the_documented_headers_and_signature(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    new = registry.create(name="shop", display_name="Shop", webhook_url=receiver.url, now=NOW)
    with engine.begin() as connection:
        insert_enrollment(
            connection,
            id="enr-1",
            user_id="u-1042",
            email="yamada@example.jp",
            profile="default",
            certificate_user_id="shm-7k2m9x4q",
            status="locked",
            one_time_password_hash="x",
            expires_at=NOW + dt.timedelta(days=30),
            created_at=NOW,
            updated_at=NOW,
            site_id=new.site.id,
        )
        message_id = enqueue_event(
            connection,
            enrollment_id="enr-1",
            event=EventType.ENROLLMENT_LOCKED,
            data={"failed_attempts": 6},
            now=NOW,
        )
    assert message_id is not None

    # The real clock signs, so that the README's function can use its default `now`.
    before = int(time.time())
    assert deliver_once(registry, NOW, clock=lambda: dt.datetime.now(dt.UTC)) == 1

    [request] = receiver.requests
    body = stored(engine, message_id).body
    assert request.method == "POST"
    assert request.path == "/hooks/shomei"
    assert request.body == body.encode("utf-8")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["shomei-event"] == "enrollment.locked"
    assert request.headers["shomei-delivery"] == str(message_id)
    timestamp = request.headers["shomei-timestamp"]
    assert before <= int(timestamp) <= int(time.time())
    assert re.fullmatch(r"v1=[0-9a-f]{64}", request.headers["shomei-signature"])
    event = json.loads(request.body)
    assert event["type"] == "enrollment.locked"
    assert event["data"] == {"enrollment_id": "enr-1", "user_id": "u-1042", "failed_attempts": 6}

    assert new.webhook_secret is not None
    readme_verify = readme_verify_signature()
    assert readme_verify(
        new.webhook_secret, timestamp, request.body, request.headers["shomei-signature"]
    )
    assert stored(engine, message_id).delivered_at == NOW


@VERIFIERS
def test_a_tampered_body_or_another_secret_fails_verification(verify: Verify) -> None:
    secret, body, timestamp = "whsec_" + "ab" * 32, b'{"type":"certificate.issued"}', 1743498000
    header = sign(secret, timestamp, body)
    assert verify(secret, str(timestamp), body, header, now=timestamp)
    assert not verify(
        secret, str(timestamp), body.replace(b"issued", b"revoked"), header, now=timestamp
    )
    assert not verify("whsec_" + "cd" * 32, str(timestamp), body, header, now=timestamp)
    # The timestamp is signed too: moving it (to get back into the window) breaks the signature.
    assert not verify(secret, str(timestamp + 1), body, header, now=timestamp)
    assert not verify(secret, str(timestamp), body, header.replace("v1=", "v0="), now=timestamp)
    assert not verify(secret, str(timestamp), body, "", now=timestamp)


@VERIFIERS
def test_a_timestamp_outside_the_replay_window_fails_verification(verify: Verify) -> None:
    secret, body, timestamp = "whsec_" + "ab" * 32, b"{}", 1743498000
    header = sign(secret, timestamp, body)
    for now in (timestamp - 300, timestamp + 300):
        assert verify(secret, str(timestamp), body, header, now=now)
    for now in (timestamp - 301, timestamp + 301, timestamp + 86_400):
        assert not verify(secret, str(timestamp), body, header, now=now)
    for malformed in ("", " 1743498000", "+1743498000", "1743498000.0", "١٧٤٣٤٩٨٠٠٠"):
        assert not verify(secret, malformed, body, header, now=timestamp)


@VERIFIERS
def test_any_of_several_listed_signatures_may_match(verify: Verify) -> None:
    secret, body, timestamp = "whsec_" + "ab" * 32, b"{}", 1743498000
    header = f"v1={'0' * 64}, {sign(secret, timestamp, body)}"
    assert verify(secret, str(timestamp), body, header, now=timestamp)


# --- retries and permanent failures --------------------------------------------------------


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers_200(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    site = make_site(registry, receiver.url)
    message_id = enqueue_webhook(engine, site)
    receiver.answers.extend([500, 503])

    assert deliver_once(registry, NOW) == 0
    first = stored(engine, message_id)
    assert (first.attempts, first.next_attempt_at) == (1, NOW + dt.timedelta(seconds=30))
    assert first.last_error == "HTTP 500 Internal Server Error"
    assert (first.delivered_at, first.failed_at, first.claimed_until) == (None, None, None)

    # Not due before the backoff has passed: nothing is sent.
    assert deliver_once(registry, NOW + dt.timedelta(seconds=29)) == 0
    assert len(receiver.requests) == 1

    second_try = NOW + dt.timedelta(seconds=30)
    assert deliver_once(registry, second_try) == 0
    second = stored(engine, message_id)
    assert second.attempts == 2
    assert second.next_attempt_at == second_try + dt.timedelta(seconds=60)
    assert second.last_error == "HTTP 503 Service Unavailable"

    third_try = second.next_attempt_at
    assert deliver_once(registry, third_try) == 1
    third = stored(engine, message_id)
    assert (third.attempts, third.delivered_at) == (2, third_try)

    # One delivery id throughout, each attempt signed anew at its own time.
    assert receiver.deliveries() == [str(message_id)] * 3
    timestamps = [int(request.headers["shomei-timestamp"]) for request in receiver.requests]
    assert timestamps == [int(t.timestamp()) for t in (NOW, second_try, third_try)]
    secret = registry.webhook_secret(site)
    assert secret is not None
    for request in receiver.requests:
        assert verify_signature(
            secret,
            request.headers["shomei-timestamp"],
            request.body,
            request.headers["shomei-signature"],
            now=dt.datetime.fromtimestamp(int(request.headers["shomei-timestamp"]), dt.UTC),
        )
    # Delivered messages are never sent again.
    assert deliver_once(registry, third_try + dt.timedelta(days=1)) == 0
    assert len(receiver.requests) == 3


def test_410_gone_fails_the_message_for_good(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    message_id = enqueue_webhook(engine, make_site(registry, receiver.url))
    receiver.answers.append(410)
    assert deliver_once(registry, NOW) == 0
    message = stored(engine, message_id)
    assert (message.attempts, message.failed_at) == (1, NOW)
    assert message.last_error is not None
    assert message.last_error.startswith("HTTP 410 Gone")
    assert deliver_once(registry, NOW + dt.timedelta(days=1)) == 0
    assert len(receiver.requests) == 1


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    message_id = enqueue_webhook(engine, make_site(registry, receiver.url))
    receiver.answers.append(302)
    assert deliver_once(registry, NOW) == 0
    message = stored(engine, message_id)
    assert (message.attempts, message.failed_at) == (1, None)
    assert message.last_error == "HTTP 302 Found: redirects are not followed"
    assert [request.path for request in receiver.requests] == ["/hooks/shomei"]


def test_a_receiver_that_cannot_be_reached_is_a_failed_attempt(
    engine: Engine, registry: SiteRegistry
) -> None:
    site = make_site(registry, f"http://127.0.0.1:{free_port()}/hook")
    message_id = enqueue_webhook(engine, site)
    assert deliver_once(registry, NOW) == 0
    message = stored(engine, message_id)
    assert (message.attempts, message.failed_at) == (1, None)
    assert message.next_attempt_at == NOW + dt.timedelta(seconds=30)
    assert message.last_error is not None
    assert message.last_error.startswith("ConnectError")


def test_a_receiver_too_slow_to_answer_is_a_failed_attempt(
    engine: Engine, registry: SiteRegistry, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short limit instead of the real 10 s, so that the test does not wait for it.
    monkeypatch.setattr(webhook_delivery, "TIMEOUT", 0.2)
    receiver.delay = 1.0
    message_id = enqueue_webhook(engine, make_site(registry, receiver.url))
    started = time.monotonic()
    assert deliver_once(registry, NOW) == 0
    assert time.monotonic() - started < 0.9
    message = stored(engine, message_id)
    assert (message.attempts, message.failed_at) == (1, None)
    assert message.last_error is not None
    assert "ReadTimeout" in message.last_error or "no answer within" in message.last_error


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("webhook removed", "site shop has no webhook any more"),
        ("site disabled", "site shop is disabled"),
    ],
)
def test_a_message_of_a_site_that_no_longer_takes_webhooks_fails_for_good(
    engine: Engine, registry: SiteRegistry, receiver: Receiver, change: str, error: str
) -> None:
    site = make_site(registry, receiver.url)
    message_id = enqueue_webhook(engine, site)
    if change == "webhook removed":
        registry.set_webhook("shop", None)
    else:
        with engine.begin() as connection:
            update_site(connection, site.id, status="disabled")
    assert deliver_once(registry, NOW) == 0
    message = stored(engine, message_id)
    assert (message.attempts, message.failed_at, message.last_error) == (1, NOW, error)
    assert receiver.requests == []


def test_a_new_webhook_url_and_secret_apply_to_messages_already_queued(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    message_id = enqueue_webhook(engine, make_site(registry, "https://old.example/hook"))
    secret = registry.set_webhook("shop", receiver.url)
    assert secret is not None
    assert deliver_once(registry, NOW) == 1
    [request] = receiver.requests
    assert request.headers["shomei-delivery"] == str(message_id)
    assert verify_signature(
        secret,
        request.headers["shomei-timestamp"],
        request.body,
        request.headers["shomei-signature"],
        now=NOW,
    )


# --- claims --------------------------------------------------------------------------------


def test_concurrent_senders_never_deliver_one_message_twice(
    engine: Engine, database_url: str, receiver: Receiver
) -> None:
    site = make_site(SiteRegistry(engine, WEBHOOK_KEY, private_webhooks=True), receiver.url)
    ids = [enqueue_webhook(engine, site, number=number) for number in range(24)]
    workers = 4
    # One engine each, as separate worker processes would have: no shared pool or connection.
    engines = [create_database_engine(database_url) for _ in range(workers)]
    start = threading.Barrier(workers)

    def send_until_empty(own: Engine) -> int:
        async def rounds() -> int:
            total = 0
            async with WebhookDelivery(
                SiteRegistry(own, WEBHOOK_KEY, private_webhooks=True), clock=lambda: NOW
            ) as hook:
                while sent := await deliver_channel_due(own, WEBHOOK, hook, now=NOW, limit=3):
                    total += sent
            return total

        start.wait()
        return asyncio.run(rounds())

    try:
        with ThreadPoolExecutor(workers) as pool:
            sent = list(pool.map(send_until_empty, engines))
    finally:
        for opened in engines:
            opened.dispose()
    assert sum(sent) == len(ids)
    assert sorted(int(delivery) for delivery in receiver.deliveries()) == ids
    assert all(stored(engine, message_id).delivered_at == NOW for message_id in ids)


def test_webhook_and_mail_senders_claim_only_their_own_channel(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    message_id = enqueue_webhook(engine, make_site(registry, receiver.url))
    assert claim_due(engine, now=NOW, lease=dt.timedelta(minutes=1), limit=10) == []
    assert deliver_once(registry, NOW) == 1
    assert receiver.deliveries() == [str(message_id)]


# --- the background loop and the listing ---------------------------------------------------


def test_the_webhook_sender_loop_delivers_and_stops(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    message_id = enqueue_webhook(engine, make_site(registry, receiver.url))

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_webhook_sender(registry, stop=stop, interval=0.05))
        deadline = time.monotonic() + 10
        while not receiver.requests:
            assert time.monotonic() < deadline, "the loop sent nothing"
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert receiver.deliveries() == [str(message_id)]
    assert stored(engine, message_id).delivered_at is not None


def test_list_deliveries_shows_the_sites_messages_newest_first(
    engine: Engine, registry: SiteRegistry, receiver: Receiver
) -> None:
    shop = make_site(registry, receiver.url)
    other = make_site(registry, receiver.url, name="other")
    ids = [enqueue_webhook(engine, shop, number=number) for number in range(3)]
    enqueue_webhook(engine, other, number=9)
    receiver.answers.append(500)
    deliver_once(registry, NOW)

    listed = list_deliveries(engine, site_id=shop.id)
    assert [message.id for message in listed] == ids[::-1]
    assert [message.id for message in list_deliveries(engine, site_id=shop.id, limit=2)] == (
        ids[:0:-1]
    )
    by_id = {message.id: message for message in listed}
    assert by_id[ids[0]].last_error == "HTTP 500 Internal Server Error"
    assert by_id[ids[1]].delivered_at == NOW
    assert all((message.site_id, message.channel) == (shop.id, WEBHOOK) for message in listed)
