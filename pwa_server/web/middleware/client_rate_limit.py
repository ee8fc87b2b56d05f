"""A token bucket per client address in front of the expensive and the guessable.

The forms that check a secret (one-time password, secret answer, download password) and the
officers' sign-in are what a script hammers: each check costs real work, and each is a
guess. Before any of it, one token is taken from the client's bucket for that purpose, in
the database so that every worker and instance shares it; without one the answer is 429
with Retry-After and a page that says when to try again. An IPv6 client is its /64: one
subscriber commonly holds the whole prefix (enrollment.throttle.client_network, which the
download throttle shares).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pwa_server.enrollment.throttle import client_network
from pwa_server.i18n import N_
from pwa_server.runtime import Services
from pwa_server.store.client_buckets import take_token
from pwa_server.web.asgi import ASGIApp, Receive, Scope, Send
from pwa_server.web.errors import error_response

GUESSES = "guesses"
OFFICER_SIGN_IN = "officer-sign-in"

# POSTs that check a secret, or start or finish an officer's sign-in or registration.
_GUARDED = [
    (re.compile(r"/enroll/[^/]+(/secret)?|/download|/reissue"), GUESSES),
    (
        re.compile(r"/officer/sign-in(/options)?|/officer/register/[^/]+(/options)?"),
        OFFICER_SIGN_IN,
    ),
]


def purpose_of(method: str, path: str) -> str | None:
    """The bucket a request takes a token from, or None when it takes none."""
    if method != "POST":
        return None
    return next((purpose for pattern, purpose in _GUARDED if pattern.fullmatch(path)), None)


def client_of(scope: Scope) -> str:
    """The client the bucket belongs to: its network (TrustedProxyTlsMiddleware has put the
    proxied client's address in the scope)."""
    client = scope.get("client")
    return client_network(client[0] if client else None)


@dataclass(frozen=True)
class _Allowance:
    capacity: int
    per_second: float


class ClientRateLimitMiddleware:
    """Takes a token for every guarded request; 429 when the client's bucket is empty."""

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services
        settings = services.settings
        self.allowances = {
            GUESSES: _Allowance(
                settings.secret_checks_per_minute, settings.secret_checks_per_minute / 60
            ),
            OFFICER_SIGN_IN: _Allowance(
                settings.officer_sign_ins_per_minute, settings.officer_sign_ins_per_minute / 60
            ),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        purpose = (
            purpose_of(scope.get("method", ""), scope["path"]) if scope["type"] == "http" else None
        )
        if purpose is None:
            await self.app(scope, receive, send)
            return
        wait = await run_in_threadpool(self._take, purpose, client_of(scope))
        if wait == 0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        response = error_response(
            Request(scope, receive),
            429,
            N_("Too many attempts from your network"),
            N_("Please wait %(seconds)s seconds, then try again."),
            retry_after=seconds,
        )
        await response(scope, receive, send)

    def _take(self, purpose: str, client: str) -> float:
        allowance = self.allowances[purpose]
        with self.services.engine.begin() as connection:
            return take_token(
                connection,
                purpose,
                client,
                capacity=allowance.capacity,
                per_second=allowance.per_second,
                now=self.services.now().timestamp(),
            )
