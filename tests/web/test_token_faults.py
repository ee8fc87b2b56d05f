"""A token fault while a secret is checked is a 503 with Retry-After, never a trace."""

from __future__ import annotations

import copy
import dataclasses
import re
import secrets
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from hsm import TokenHmacKey
from pwa_server.runtime import Services
from pwa_server.web.app import create_app

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@pytest.fixture
def keyless(services: Services) -> Iterator[TestClient]:
    """The application whose HMAC key has gone from the token (a token replaced, say)."""
    downloads = copy.copy(services.downloads)
    downloads.hashes = copy.copy(services.downloads.hashes)
    downloads.hashes.key = TokenHmacKey(services.token, f"gone-{secrets.token_hex(4)}")
    app = create_app(dataclasses.replace(services, downloads=downloads))
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def test_a_download_while_the_token_fails_is_503_with_retry_after(keyless: TestClient) -> None:
    form = keyless.get("/download")
    found = _CSRF.search(form.text)
    assert found is not None
    response = keyless.post(
        "/download",
        data={
            "csrf_token": found.group(1),
            "certificate_user_id": "shm-abcdefgh",
            "download_password": "abcd efgh jkmn p",
            "platform": "android",
        },
        headers={"accept": "text/html"},
    )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "Traceback" not in response.text
    assert "鍵" in response.text
