"""One response may let its forms post to another origin: only that response, only origins a
CSP can name, and nothing a handler writes can break out of the form-action directive."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from pwa_server.web.middleware.security_headers import (
    CONTENT_SECURITY_POLICY,
    SecurityHeadersMiddleware,
    allow_form_action,
    can_allow_form_action,
)


async def widened(request: Request) -> Response:
    response = PlainTextResponse("form")
    for origin in request.query_params.getlist("origin"):
        allow_form_action(response, origin)
    return response


async def raw_header(request: Request) -> Response:
    """A handler that writes the internal header itself, with whatever it was given."""
    return PlainTextResponse("raw", headers={"x-shomei-form-action": request.query_params["v"]})


@pytest.fixture
def client() -> TestClient:
    app = Starlette(
        routes=[Route("/widened", widened), Route("/raw", raw_header), Route("/plain", widened)],
        middleware=[Middleware(SecurityHeadersMiddleware)],
    )
    return TestClient(app, base_url="https://testserver")


def form_action(policy: str) -> str:
    [directive] = [d.strip() for d in policy.split(";") if d.strip().startswith("form-action")]
    return directive


def test_allowed_origins_join_form_action_once_each(client: TestClient) -> None:
    response = client.get(
        "/widened",
        params=[
            ("origin", "https://Shop.Example.jp"),
            ("origin", "http://localhost:8080"),
            ("origin", "https://shop.example.jp"),
        ],
    )
    assert form_action(response.headers["content-security-policy"]) == (
        "form-action 'self' https://shop.example.jp http://localhost:8080"
    )
    assert "x-shomei-form-action" not in response.headers
    policy = response.headers["content-security-policy"]
    assert policy.replace(" https://shop.example.jp http://localhost:8080", "") == (
        CONTENT_SECURITY_POLICY
    )


def test_a_response_that_allows_nothing_keeps_the_strict_policy(client: TestClient) -> None:
    response = client.get("/plain")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example.jp; script-src *",
        "https://shop.example.jp/path",
        "https://[::1]:8443",
        "javascript:alert(1)",
        "https://*.example.jp",
        "ftp://shop.example.jp",
        "https://",
        "'unsafe-inline'",
    ],
)
def test_what_a_csp_cannot_name_is_refused(origin: str) -> None:
    assert not can_allow_form_action(origin)
    with pytest.raises(ValueError, match="cannot be named"):
        allow_form_action(PlainTextResponse(""), origin)


def test_the_middleware_drops_anything_else_written_into_the_internal_header(
    client: TestClient,
) -> None:
    response = client.get("/raw", params={"v": "https://ok.example 'unsafe-inline' *; x"})

    assert (
        form_action(response.headers["content-security-policy"])
        == "form-action 'self' https://ok.example"
    )
    assert "x-shomei-form-action" not in response.headers
