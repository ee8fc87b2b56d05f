"""The installation check page a person reads (issue 12): the answer in plain words first,
the expiry, the way back to the site, and the technical details behind 「詳細」."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pwa_server.runtime import Services
from pwa_server.sites.assertions import ReturnToSite
from pwa_server.web.app import create_app
from pwa_server.web.rendering import Operator, Renderer

CERTIFICATE = {
    "subject": "CN=c1",
    "issuer": "CN=Shomei Issuing CA",
    "serial": "1A",
    "fingerprint": "0123ABCD 4567EF01",
    "user_id": "c1",
    "not_before": dt.datetime(2026, 12, 3, 6, 4, tzinfo=dt.UTC),
    "not_after": dt.datetime(2028, 12, 3, 6, 4, tzinfo=dt.UTC),
}
BACK = ReturnToSite("portal", "社内ポータル", "https://portal.example.jp/return", "eyJ.a.b")


def _render(locale: str, **context: Any) -> str:
    renderer = Renderer(zone=zoneinfo.ZoneInfo("Asia/Tokyo"), operator=Operator())
    return renderer.templates.render("check.html", locale, status="ok", **context)


@pytest.mark.parametrize(
    ("locale", "installed", "expiry"),
    [
        ("ja", "証明書は正しくインストールされています", "2028年12月3日"),
        ("en", "The certificate is installed and usable", "3 December 2028"),
    ],
)
def test_success_and_expiry_come_before_the_details_inside_details(
    locale: str, installed: str, expiry: str
) -> None:
    page = _render(locale, certificate=CERTIFICATE)

    success, summary = page.index(installed), page.index('id="check-summary"')
    details, subject = page.index('<details id="check-details">'), page.index("CN=c1")
    closed = page.index("</details>")
    assert success < summary < page.index(expiry) < details < subject < closed
    # The mark says it too, so the answer is not carried by colour alone.
    assert '<span class="mark" aria-hidden="true">✓</span>' in page
    for technical in ("CN=Shomei Issuing CA", ">1A<", "0123ABCD 4567EF01"):
        assert details < page.index(technical) < closed


def test_the_way_back_to_the_site_comes_right_after_the_answer() -> None:
    page = _render("ja", certificate=CERTIFICATE, back=BACK)

    form = page.index('<form id="return-to-site" method="post"')
    assert page.index('id="check-summary"') < form < page.index("<details")
    assert 'action="https://portal.example.jp/return"' in page
    assert '<input type="hidden" name="assertion" value="eyJ.a.b">' in page
    assert "社内ポータルに戻る</button>" in page


def test_without_a_return_url_there_is_no_button_back() -> None:
    assert 'id="return-to-site"' not in _render("ja", certificate=CERTIFICATE)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="https://testserver") as test_client:
        yield test_client


def test_no_certificate_says_what_to_do_with_the_guides_of_the_enrollment_site(
    client: TestClient, services: Services
) -> None:
    page = client.get("/check", headers={"accept-language": "ja"}).text

    public = services.settings.effective_public_url
    assert page.index('data-status="missing"') < page.index('id="check-next"')
    assert f'href="{public}/guide/ios"' in page
    assert f'href="{public}/guide/android"' in page
    assert f'href="{services.check_url}">もう一度確認する</a>' in page
    assert "<details" not in page
