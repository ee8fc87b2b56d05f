"""iOS browsers other than Safari are sent to Safari before the download and told how to
retry the check there; an iPad's desktop agent is offered both choices."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from pwa_server.runtime import Services
from pwa_server.web.app import create_app
from tests.web.test_user_agent import (
    ANDROID_CHROME,
    IPAD_SAFARI,
    IPHONE_CHROME,
    IPHONE_FIREFOX,
    IPHONE_SAFARI,
)

SAFARI_HEADING = "このページを Safari で開いてください"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="https://testserver") as test_client:
        yield test_client


def _get(client: TestClient, path: str, agent: str) -> str:
    response = client.get(path, headers={"user-agent": agent, "accept-language": "ja"})
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize("agent", [IPHONE_CHROME, IPHONE_FIREFOX], ids=["chrome", "firefox"])
def test_iphone_chrome_or_firefox_gets_the_open_in_safari_page_before_the_download(
    client: TestClient, services: Services, agent: str
) -> None:
    page = _get(client, "/download", agent)
    assert SAFARI_HEADING in page
    assert 'name="download_password"' not in page
    # The link to paste in Safari is text on the page, so it can be copied without the script.
    assert f'<code id="page-link">{services.settings.effective_public_url}/download</code>' in page
    assert '<script src="/static/browser.js" defer></script>' in page
    assert 'href="/download?browser=this"' in page


def test_iphone_chrome_gets_the_open_in_safari_page_at_the_enrollment_link(
    client: TestClient, services: Services
) -> None:
    invitation = services.enrollments.create(
        user_id="chrome-user", email="chrome@example.jp", now=services.now()
    )
    page = _get(client, f"/enroll/{invitation.enrollment_id}", IPHONE_CHROME)
    assert SAFARI_HEADING in page
    assert f">{invitation.enrollment_url}</code>" in page
    assert 'name="one_time_password"' not in page


def test_safari_and_android_get_the_download_form(client: TestClient) -> None:
    for agent in (IPHONE_SAFARI, ANDROID_CHROME):
        page = _get(client, "/download", agent)
        assert SAFARI_HEADING not in page
        assert 'name="download_password"' in page


def test_a_person_who_cannot_use_safari_can_continue(client: TestClient) -> None:
    page = _get(client, "/download?browser=this", IPHONE_CHROME)
    assert 'name="download_password"' in page
    assert 'value="ios" checked' in page


def test_an_ipad_desktop_agent_is_offered_both_with_the_script_to_choose(
    client: TestClient,
) -> None:
    page = _get(client, "/download", IPAD_SAFARI)
    assert 'value="other" checked' in page
    assert 'value="ios" data-ipad' in page
    assert 'id="ipad-hint"' in page
    assert '<script src="/static/browser.js" defer></script>' in page
    assert client.get("/static/browser.js").status_code == 200


def test_check_without_certificate_in_iphone_chrome_says_how_to_retry_in_safari(
    client: TestClient, services: Services
) -> None:
    page = _get(client, "/check", IPHONE_CHROME)
    assert "Safari でもう一度お試しください" in page
    assert f'<code id="page-link">{services.check_url}</code>' in page
    safari = _get(client, "/check", IPHONE_SAFARI)
    assert "Safari でもう一度お試しください" not in safari
