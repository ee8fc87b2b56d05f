"""Every "already used", "expired" or "locked" page names the one thing a person can do next
(issue 12): a new download password at /reissue, or the administrator who sent the invitation."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from pwa_server.enrollment.errors import (
    DownloadThrottledError,
    DownloadWindowClosedError,
    EnrollmentCancelledError,
    EnrollmentExpiredError,
    EnrollmentLockedError,
)
from pwa_server.enrollment.models import Invitation
from pwa_server.errors import ShomeiError
from pwa_server.runtime import Services
from pwa_server.web.app import create_app

REISSUE_BUTTON = '<a class="button" id="next-action" href="/reissue">'
# The pages these errors become, reached by a route that raises them (the flows that raise
# them are tested in tests/enrollment and tests/e2e).
ERRORS: dict[str, ShomeiError] = {
    "expired": EnrollmentExpiredError("expired"),
    "locked": EnrollmentLockedError("locked"),
    "cancelled": EnrollmentCancelledError("cancelled"),
    "window-closed": DownloadWindowClosedError("closed"),
    "throttled": DownloadThrottledError(retry_after=30),
}


def _client(services: Services, **operator: str) -> TestClient:
    settings = services.settings.model_copy(update=operator)
    app = create_app(dataclasses.replace(services, settings=settings))

    async def fail(request: Request) -> Response:
        raise ERRORS[request.path_params["error"]]

    app.add_route("/test-error/{error:str}", fail)
    return TestClient(app, base_url="https://testserver")


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with _client(services) as test_client:
        yield test_client


@pytest.mark.parametrize("error", ["window-closed", "throttled"])
def test_a_closed_download_window_or_lost_password_leads_to_the_reissue_page(
    client: TestClient, error: str
) -> None:
    page = client.get(f"/test-error/{error}").text

    assert REISSUE_BUTTON + "ダウンロードパスワードの再発行</a>" in page
    english = client.get(f"/test-error/{error}", headers={"accept-language": "en"}).text
    assert REISSUE_BUTTON + "Get a new download password</a>" in english


@pytest.mark.parametrize("error", ["expired", "locked", "cancelled"])
def test_an_expired_locked_or_cancelled_enrollment_leads_to_the_administrator(
    client: TestClient, error: str
) -> None:
    page = client.get(f"/test-error/{error}").text

    assert "このあとは、ご案内元の管理者にご連絡ください。" in page
    assert 'href="/reissue"' not in page
    english = client.get(f"/test-error/{error}", headers={"accept-language": "en"}).text
    assert "What to do next: contact the administrator who sent you the invitation." in english


def test_the_administrator_next_action_names_the_operator_and_lists_the_contacts(
    services: Services,
) -> None:
    with _client(
        services, operator_name="山田市役所", operator_contact_email="help@example.jp"
    ) as client:
        page = client.get("/test-error/locked").text

    assert "このあとは、山田市役所にご連絡ください。" in page
    assert 'href="mailto:help@example.jp"' in page
    # The contacts belong to the next action, not to a second "if this does not help".
    assert "解決しない場合" not in page


def _used_link(services: Services) -> Invitation:
    """An invitation taken through the one-time password and the secret question."""
    now = services.now()
    invitation = services.enrollments.create(
        user_id=f"used-{uuid.uuid4().hex[:8]}", email="used@example.jp", now=now
    )
    services.enrollments.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=now
    )
    services.enrollments.register_secret(
        invitation.enrollment_id,
        question="first-pet",
        answer="Pochi",
        answer_confirm="Pochi",
        now=now,
    )
    return invitation


def test_a_used_enrollment_link_leads_to_the_reissue_page_with_the_user_id(
    client: TestClient, services: Services
) -> None:
    invitation = _used_link(services)

    response = client.get(f"/enroll/{invitation.enrollment_id}")

    assert response.status_code == 409
    assert "この登録用リンクは使用済みです" in response.text
    assert REISSUE_BUTTON + "ダウンロードパスワードの再発行</a>" in response.text
    assert f"<strong>{invitation.certificate_user_id}</strong>" in response.text
    assert 'href="/download"' in response.text
    assert "ご案内元の管理者に新しい登録" not in response.text


def test_the_reissue_page_a_used_link_leads_to_starts_with_its_user_id(
    client: TestClient, services: Services
) -> None:
    assert 'name="certificate_user_id" required maxlength="64" autocapitalize="none" value=""' in (
        client.get("/reissue").text
    )
    invitation = _used_link(services)
    client.get(f"/enroll/{invitation.enrollment_id}")

    page = client.get("/reissue").text

    assert f'value="{invitation.certificate_user_id}"' in page
