"""An officer at the console over real sockets without a browser: httpx for the HTTP and
tests/officers/authenticator.py for the security key, answering the same JSON calls that
officer.js makes. Cheaper than Chromium, so the server's own checks can be tried many ways
(a copied cookie, a missing assertion) against a real `shomei serve`."""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from testbed.serving import ShomeiServer
from tests.officers.authenticator import SoftwareAuthenticator

SESSION_COOKIE = "__Host-session"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class ConsoleClient:
    """One browser's cookies and one person's key (`key`) at `server`'s console."""

    server: ShomeiServer
    http: httpx.Client
    key: SoftwareAuthenticator
    csrf: str = ""

    @classmethod
    def open(cls, server: ShomeiServer, key: SoftwareAuthenticator | None = None) -> ConsoleClient:
        http = server.client(
            base_url=server.base_url, follow_redirects=False, headers={"accept-language": "en"}
        )
        return cls(server, http, key or SoftwareAuthenticator(server.base_url))

    def close(self) -> None:
        self.http.close()

    def page(self, path: str) -> httpx.Response:
        """GET a page; the CSRF token of the session is kept from it."""
        response = self.http.get(path)
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post_json(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """A JSON call as officer.js makes it (CSRF token in X-CSRF-Token)."""
        return self.http.post(path, json=body or {}, headers={"x-csrf-token": self.csrf})

    def post_form(self, path: str, fields: dict[str, str]) -> httpx.Response:
        """A form as the console's pages send it (CSRF token in the form)."""
        return self.http.post(path, data={"csrf_token": self.csrf, **fields})

    def register(self, link: str, label: str = "software key") -> None:
        """Open the invitation link and register the key: signed in."""
        path = link.removeprefix(self.server.base_url)
        assert self.page(path).status_code == 200
        options = self.post_json(f"{path}/options")
        assert options.status_code == 200, options.text
        credential = json.loads(self.key.create(options.text))
        answered = self.post_json(path, {"credential": credential, "label": label})
        assert answered.status_code == 200, answered.text
        self.page("/officer/")  # a new session, with a CSRF token of its own

    def sign_in(self) -> httpx.Response:
        """The sign-in page and the key's assertion: the server's answer (then the overview,
        for the new session's CSRF token)."""
        self.page("/officer/sign-in")
        options = self.post_json("/officer/sign-in/options")
        assert options.status_code == 200, options.text
        answered = self.post_json(
            "/officer/sign-in", {"credential": json.loads(self.key.get(options.text))}
        )
        self.page("/officer/")
        return answered

    def step_up(self) -> dict[str, Any]:
        """A fresh assertion of the key, answering a step-up challenge (as officer.js asks)."""
        options = self.post_json("/officer/step-up/options")
        assert options.status_code == 200, options.text
        assertion: dict[str, Any] = json.loads(self.key.get(options.text))
        return assertion

    def confirmed_form(self, path: str, fields: dict[str, str] | None = None) -> httpx.Response:
        """A sensitive action's form, with a fresh assertion of the key."""
        return self.post_form(path, {"assertion": json.dumps(self.step_up()), **(fields or {})})

    def add_key(
        self, new_key: SoftwareAuthenticator, *, confirm: bool = True, label: str = "spare key"
    ) -> httpx.Response:
        """Register `new_key` as officer.js does: a step-up assertion first (unless `confirm`
        is False), then the new key's registration."""
        body: dict[str, Any] = {"label": label}
        if confirm:
            body["assertion"] = self.step_up()
        options = self.post_json("/officer/keys/options")
        assert options.status_code == 200, options.text
        body["credential"] = json.loads(new_key.create(options.text))
        return self.post_json("/officer/keys", body)

    def session_token(self) -> str:
        """The console session's token, read from the signed cookie as the server does."""
        cookie = next(c for c in self.http.cookies.jar if c.name == SESSION_COOKIE)
        payload = (cookie.value or "").split(".")[0]
        data = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
        token: str = data["officer_session"]
        return token

    def copy(self, key: SoftwareAuthenticator | None = None) -> ConsoleClient:
        """Another client holding a copy of this one's session cookie (an attacker's)."""
        other = ConsoleClient.open(self.server, key)
        for cookie in self.http.cookies.jar:
            other.http.cookies.jar.set_cookie(copy.copy(cookie))
        other.csrf = self.csrf
        return other
