"""The application's responses: health, security headers, errors without stack traces."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from pwa_server.frontend import STATIC_DIR
from pwa_server.runtime import Services
from pwa_server.store.database import create_database_engine
from pwa_server.web.app import create_app
from pwa_server.web.middleware.security_headers import CONTENT_SECURITY_POLICY


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="https://testserver") as test_client:
        yield test_client


def test_every_response_carries_a_strict_content_security_policy(client: TestClient) -> None:
    for path in ("/", "/healthz", "/pki/root.pem", "/no-such-page"):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["strict-transport-security"].startswith("max-age=")


def test_unknown_page_is_a_japanese_page_for_browsers_by_default(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "ページが見つかりません" in response.text


def test_unknown_page_is_in_english_for_browsers_that_ask_for_it(client: TestClient) -> None:
    response = client.get(
        "/no-such-page", headers={"accept": "text/html", "accept-language": "en-GB,en;q=0.9"}
    )
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert '<html lang="en">' in response.text


def test_unknown_path_is_a_problem_document_for_programs(client: TestClient) -> None:
    response = client.get("/pki/nothing.crt")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Page not found", "status": 404}


def test_wrong_method_is_refused_without_a_trace(client: TestClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "Traceback" not in response.text


def test_landing_page_shows_the_root_fingerprint_to_compare(
    client: TestClient, services: Services
) -> None:
    from pwa_server.pki.authority import fingerprint

    page = client.get("/").text
    grouped = " ".join(
        fingerprint(services.root.certificate).upper()[i : i + 8] for i in range(0, 64, 8)
    )
    assert grouped in page


def test_health_is_503_naming_the_database_when_it_is_unreachable(services: Services) -> None:
    dead = create_database_engine("postgresql://postgres@127.0.0.1:1/test")
    broken = dataclasses.replace(services, engine=dead)
    with TestClient(create_app(broken), base_url="https://testserver") as test_client:
        response = test_client.get("/healthz")
    dead.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "unavailable"
    assert body["hsm"] == "ok"
    assert "database unreachable" in body["reason"]


def test_health_is_503_when_the_token_key_does_not_sign_for_the_ca(services: Services) -> None:
    mismatched = dataclasses.replace(services.issuing, certificate=services.root.certificate)
    broken = dataclasses.replace(services, issuing=mismatched)
    with TestClient(create_app(broken), base_url="https://testserver") as test_client:
        response = test_client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["hsm"] == "unavailable"
    assert "does not match" in response.json()["reason"]


def test_service_worker_is_served_from_the_root_so_it_covers_the_site(client: TestClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"


def test_service_worker_caches_every_script_of_the_user_pages(client: TestClient) -> None:
    # A phone that opens a guide offline must find the scripts its pages include; the
    # console's script and the worker itself are not part of the shell.
    worker = client.get("/sw.js").text
    cached = set(re.findall(r'"(/static/[^"]+)"', worker))
    scripts = {
        f"/static/{path.name}"
        for path in STATIC_DIR.glob("*.js")
        if path.name not in {"officer.js", "sw.js"}
    }
    assert scripts <= cached
    for path in cached:
        assert client.get(path).status_code == 200


def test_manifest_icons_all_exist(client: TestClient) -> None:
    manifest = client.get("/static/manifest.webmanifest").json()
    assert manifest["start_url"] == "/"
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200


def test_flow_pages_are_never_cached(client: TestClient) -> None:
    for path in ("/", "/download", "/reissue", "/guide/ios", "/enroll/unknown-id"):
        assert client.get(path).headers["cache-control"] == "no-store"


def test_form_post_without_csrf_token_is_refused_with_a_page(client: TestClient) -> None:
    response = client.post(
        "/download",
        data={"certificate_user_id": "shm-x", "download_password": "y", "platform": "ios"},
        headers={"accept": "text/html"},
    )
    assert response.status_code == 403
    assert "フォーム" in response.text
    assert "Traceback" not in response.text


def test_download_form_preselects_the_platform_from_the_user_agent(client: TestClient) -> None:
    agents = {
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15": "ios",
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/126": "android",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0": "other",
    }
    for agent, platform in agents.items():
        page = client.get("/download", headers={"user-agent": agent}).text
        assert f'value="{platform}" checked' in page


def test_session_cookie_is_host_only_secure_httponly_and_strict(client: TestClient) -> None:
    response = client.get("/download")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-session=")
    assert "secure" in cookie.lower()
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
