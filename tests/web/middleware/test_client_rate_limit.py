"""A token bucket per client address in front of the forms that check a secret and of the
officers' sign-in: which requests take a token, whose bucket it is, and, over a real
server, the 429 a person sees."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pytest

from pwa_server.web.middleware.client_rate_limit import (
    GUESSES,
    OFFICER_SIGN_IN,
    client_of,
    purpose_of,
)
from testbed.serving import ShomeiServer, instance_settings
from tests.conftest import run_tool

PER_MINUTE = 3


@pytest.mark.parametrize(
    ("path", "purpose"),
    [
        ("/enroll/abc", GUESSES),
        ("/enroll/abc/secret", GUESSES),
        ("/download", GUESSES),
        ("/reissue", GUESSES),
        ("/officer/sign-in/options", OFFICER_SIGN_IN),
        ("/officer/sign-in", OFFICER_SIGN_IN),
        ("/officer/register/token/options", OFFICER_SIGN_IN),
        ("/officer/keys", None),
        ("/pki/ocsp", None),
    ],
)
def test_posts_that_check_a_secret_or_sign_in_take_a_token(path: str, purpose: str | None) -> None:
    assert purpose_of("POST", path) == purpose


def test_pages_read_with_get_take_no_token() -> None:
    assert purpose_of("GET", "/download") is None


def _scope(client: str) -> dict[str, object]:
    return {"type": "http", "client": (client, 50000), "headers": []}


def test_an_ipv6_client_is_its_64_prefix() -> None:
    assert client_of(_scope("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert client_of(_scope("2001:db8:1:2:bbbb::9")) == "2001:db8:1:2::/64"


def test_an_ipv4_mapped_client_is_its_ipv4_address() -> None:
    assert client_of(_scope("::ffff:192.0.2.7")) == "192.0.2.7"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShomeiServer]:
    """An instance that allows PER_MINUTE guarded requests per client and minute."""
    root = tmp_path_factory.mktemp("client-limits")
    settings = instance_settings(root / "var")
    server = ShomeiServer(
        settings,
        root / "serve.log",
        {
            "SHOMEI_SECRET_CHECKS_PER_MINUTE": str(PER_MINUTE),
            "SHOMEI_OFFICER_SIGN_INS_PER_MINUTE": str(PER_MINUTE),
        },
    )
    initialised = run_tool(
        sys.executable, "-m", "pwa_server.cli", "init", env=server.environment, timeout=120
    )
    assert initialised.returncode == 0, initialised.stdout + initialised.stderr
    server.start()
    yield server
    server.stop()


def test_a_client_over_its_allowance_is_told_when_to_try_again(limited: ShomeiServer) -> None:
    with limited.client() as client:
        page = client.get(f"{limited.base_url}/reissue", headers={"accept-language": "ja"})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {"csrf_token": token.group(1), "certificate_user_id": "nobody", "answer": "x"}
        statuses = [
            client.post(f"{limited.base_url}/reissue", data=form).status_code
            for _ in range(PER_MINUTE)
        ]
        refused = client.post(
            f"{limited.base_url}/reissue", data=form, headers={"accept-language": "ja"}
        )
        other = client.get(f"{limited.base_url}/reissue")
    assert 429 not in statuses
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60 // PER_MINUTE
    assert "秒ほど待ってから、もう一度お試しください" in refused.text
    assert other.status_code == 200


def test_officer_sign_in_options_are_limited_per_client(limited: ShomeiServer) -> None:
    with limited.client() as client:
        answers = [
            client.post(
                f"{limited.base_url}/officer/sign-in/options",
                json={},
                headers={"x-csrf-token": "none"},
            )
            for _ in range(PER_MINUTE + 1)
        ]
    assert [answer.status_code for answer in answers[:-1]] == [403] * PER_MINUTE
    assert answers[-1].status_code == 429
    assert answers[-1].headers["content-type"].startswith("application/problem+json")
    assert "retry-after" in answers[-1].headers
