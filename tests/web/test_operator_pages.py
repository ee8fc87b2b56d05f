"""What every user page says about who runs the service and when things happen (issue 12):
the operator's block, dates in the operator's zone, plain Japanese."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pwa_server.runtime import Services
from pwa_server.web.app import create_app
from pwa_server.web.rendering import LOGO_PATH, Operator, Renderer

LOGO = b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>"
# Pages a person reaches, in both languages; the last is an error page (unknown enrollment).
USER_PAGES = ("/", "/download", "/reissue", "/guide/ios", "/guide/android", "/enroll/nope")


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def operated(services: Services, tmp_path: Path) -> Iterator[TestClient]:
    """The application with every part of the operator's block set."""
    (tmp_path / "logo.svg").write_bytes(LOGO)
    settings = services.settings.model_copy(
        update={
            "operator_name": "山田市役所",
            "operator_contact_url": "https://help.example.jp/shomei",
            "operator_contact_email": "help@example.jp",
            "operator_logo": tmp_path / "logo.svg",
        }
    )
    app = create_app(dataclasses.replace(services, settings=settings))
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


def test_pages_have_no_operator_block_when_none_is_set(client: TestClient) -> None:
    page = client.get("/").text

    assert 'id="operator"' not in page
    assert "お問い合わせ" not in page
    assert client.get(LOGO_PATH).status_code == 404


def test_every_user_page_shows_the_operator_and_how_to_contact_them(
    operated: TestClient,
) -> None:
    for path in USER_PAGES:
        page = operated.get(path).text
        assert "このサービスは山田市役所が運営しています。" in page, path
        assert "お問い合わせ" in page
        assert 'href="https://help.example.jp/shomei"' in page
        assert 'href="mailto:help@example.jp"' in page
        assert f'src="{LOGO_PATH}"' in page
    english = operated.get("/", headers={"accept-language": "en"}).text
    assert "This service is run by 山田市役所." in english
    assert "Contact page" in english


def test_the_operator_logo_is_served_from_our_origin(operated: TestClient) -> None:
    response = operated.get(LOGO_PATH)

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content == LOGO


def test_an_error_page_names_the_operator_as_the_next_contact(operated: TestClient) -> None:
    page = operated.get("/enroll/nope").text

    assert "解決しない場合は、山田市役所にお問い合わせください：" in page


def test_without_an_operator_name_the_next_contact_is_the_inviting_administrator(
    services: Services,
) -> None:
    settings = services.settings.model_copy(update={"operator_contact_email": "help@example.jp"})
    app = create_app(dataclasses.replace(services, settings=settings))
    with TestClient(app, base_url="https://testserver") as test_client:
        page = test_client.get("/enroll/nope").text

    assert "解決しない場合は、ご案内元の管理者にお問い合わせください：" in page


def test_the_console_has_no_users_contact_block(operated: TestClient) -> None:
    assert 'id="operator"' not in operated.get("/officer/sign-in").text


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ja", "2028年12月3日 15:04（日本時間）"), ("en", "3 December 2028, 15:04 (Japan Time)")],
)
def test_the_check_page_shows_the_expiry_in_japan_time(locale: str, expected: str) -> None:
    renderer = Renderer(zone=zoneinfo.ZoneInfo("Asia/Tokyo"), operator=Operator())
    certificate = {
        "subject": "CN=c1",
        "issuer": "CN=Shomei Issuing CA",
        "serial": "1A",
        "not_before": dt.datetime(2026, 12, 3, 6, 4, tzinfo=dt.UTC),
        "not_after": dt.datetime(2028, 12, 3, 6, 4, tzinfo=dt.UTC),
    }

    page = renderer.templates.render("check.html", locale, status="ok", certificate=certificate)

    assert expected in page
    assert "UTC" not in page
    assert "サブジェクト" not in page


def test_user_pages_use_no_technical_words_in_japanese(client: TestClient) -> None:
    for path in USER_PAGES:
        page = client.get(path).text
        for word in ("サブジェクト", "PKCS#12", "案内した担当者", "案内した管理者"):
            assert word not in page, (path, word)
