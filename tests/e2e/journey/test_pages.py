"""What every page owes a person: CSRF protection with a page (not a trace), Japanese and
English by Accept-Language with a switch, no caching of flow pages, and the CSP header."""

from __future__ import annotations

import pytest

from tests.e2e.journey.conftest import InvitationPool, JourneyServer
from tests.e2e.journey.flow import Invitation, Phone, assert_person_page, heading

# Directives of the Content-Security-Policy that matter most for a page holding secrets.
CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


@pytest.fixture(scope="module")
def csrf_posts(invitations: InvitationPool) -> dict[str, dict[str, str]]:
    """The forms of the journey, each filled in as a person would (all but the token)."""
    invitation = invitations.take()
    return {
        invitation.enrollment_url: {"one_time_password": invitation.one_time_password},
        f"{invitation.enrollment_url}/secret": {
            "question": "first-pet",
            "answer": "Pochi",
            "answer_confirm": "Pochi",
        },
        "/download": {
            "certificate_user_id": "shm-abcdefgh",
            "download_password": "abcdefghjkmnp",
            "platform": "ios",
        },
        "/reissue": {"certificate_user_id": "shm-abcdefgh", "answer": "Pochi"},
    }


@pytest.mark.parametrize("token", [None, "", "forged-token"], ids=["missing", "empty", "wrong"])
def test_a_form_without_this_sessions_csrf_token_gets_a_403_page(
    journey_server: JourneyServer, csrf_posts: dict[str, dict[str, str]], token: str | None
) -> None:
    with Phone(journey_server, language="en") as phone:
        phone.get("/download")  # the session and its token exist; the form does not carry it
        for path, fields in csrf_posts.items():
            data = fields if token is None else {"csrf_token": token, **fields}
            response = phone.post(path, data, csrf=False)
            assert response.status_code == 403, path
            assert_person_page(response)
            assert heading(response.text) == "This request was refused"
            assert "reload the page" in response.text


def test_a_csrf_refusal_does_not_count_as_a_wrong_one_time_password(
    journey_server: JourneyServer, invitation: Invitation
) -> None:
    with Phone(journey_server, language="en") as phone:
        phone.get(invitation.enrollment_url)
        forged = phone.post(
            invitation.enrollment_url, {"csrf_token": "x", "one_time_password": "0"}, csrf=False
        )
        assert forged.status_code == 403
        accepted = phone.submit_one_time_password(invitation, invitation.one_time_password)
    assert str(accepted.url) == f"{invitation.enrollment_url}/secret"


ENGLISH = {"/": "Certificate enrollment", "/download": "Download your certificate"}
JAPANESE = {"/": "証明書の取得", "/download": "証明書のダウンロード"}


@pytest.mark.parametrize(
    ("accept_language", "locale"),
    [
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5, ja;q=0.4", "en"),
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        (None, "ja"),
    ],
)
def test_pages_speak_the_language_of_accept_language(
    journey_server: JourneyServer, accept_language: str | None, locale: str
) -> None:
    expected = ENGLISH if locale == "en" else JAPANESE
    with Phone(journey_server, language=accept_language) as phone:
        for path, title in expected.items():
            response = phone.get(path)
            assert response.status_code == 200
            assert f'<html lang="{locale}">' in response.text
            assert heading(response.text) == title


def test_the_one_time_password_page_is_in_english_and_japanese(
    journey_server: JourneyServer, invitation: Invitation
) -> None:
    with Phone(journey_server, language="en") as english:
        assert heading(english.get(invitation.enrollment_url).text) == (
            "Enter your one-time password"
        )
        wrong = english.submit_one_time_password(invitation, "00000000")
        assert "That is not right. 5 tries left." in wrong.text
    with Phone(journey_server, language="ja") as japanese:
        assert heading(japanese.get(invitation.enrollment_url).text) == "ワンタイムパスワードの入力"
        wrong = japanese.submit_one_time_password(invitation, "00000000")
        assert "正しくありません。あと 4 回入力できます。" in wrong.text


def test_the_language_switch_changes_the_language_and_remembers_it_in_a_cookie(
    journey_server: JourneyServer,
) -> None:
    with Phone(journey_server, language="ja") as phone:
        assert heading(phone.get("/download").text) == JAPANESE["/download"]
        switched = phone.get("/download?lang=en")
        assert heading(switched.text) == ENGLISH["/download"]
        cookie = switched.headers["set-cookie"]
        assert cookie.startswith("lang=en;")
        for attribute in ("Secure", "HttpOnly", "SameSite=lax"):
            assert attribute.lower() in cookie.lower()
        # The browser still says Japanese; the choice wins, on every page, until switched back.
        assert heading(phone.get("/download").text) == ENGLISH["/download"]
        assert heading(phone.get("/").text) == ENGLISH["/"]
        assert 'href="?lang=ja"' in phone.get("/").text
        assert heading(phone.get("/?lang=ja").text) == JAPANESE["/"]
        assert heading(phone.get("/download").text) == JAPANESE["/download"]


def test_flow_pages_are_never_cached_and_carry_the_content_security_policy(
    journey_server: JourneyServer, invitation: Invitation
) -> None:
    with Phone(journey_server, language="en") as phone:
        pages = {
            "enrollment": phone.get(invitation.enrollment_url),
            "secret question": phone.submit_one_time_password(
                invitation, invitation.one_time_password
            ),
            "download password": phone.register_secret(invitation.enrollment_url, "Pochi"),
            "download form": phone.get("/download"),
            "reissue form": phone.get("/reissue"),
            "wrong download password": phone.post(
                "/download",
                {
                    "certificate_user_id": "shm-abcdefgh",
                    "download_password": "x",
                    "platform": "ios",
                },
            ),
            "used enrollment link": phone.get(invitation.enrollment_url),
            "refused form": phone.post("/download", {}, csrf=False),
        }
    for name, response in pages.items():
        assert response.status_code in (200, 400, 403, 409), name
        assert response.headers["cache-control"] == "no-store", name
        policy = response.headers["content-security-policy"]
        for directive in CSP_DIRECTIVES:
            assert directive in policy, (name, directive)
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "no-referrer", name
