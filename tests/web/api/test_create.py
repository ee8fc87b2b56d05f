"""POST /api/v1/enrollments: an invitation for one of the site's users."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest

from pwa_server.runtime import Services
from tests.web.api.conftest import (
    RETURN_URL,
    Site,
    enrollment_count,
    invitation_for,
    mails_to,
    problem_of,
    text_of,
)

MAX_BODY_BYTES = 64 * 1024


def test_create_answers_201_with_location_url_one_time_password_and_expiry(
    site: Site, services: Services
) -> None:
    before = services.now()
    response = site.api.create_enrollment(invitation_for("alice"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/api/v1/enrollments/{created['id']}"
    assert created["enrollment_url"].endswith(f"/enroll/{created['id']}")
    assert re.fullmatch(r"[0-9]{8}", created["one_time_password"])
    assert dt.datetime.fromisoformat(created["expires_at"]) > before
    assert created["status"] == "invited"
    assert created["user_id"] == "alice"
    assert response.headers["cache-control"] == "no-store"


def test_location_of_a_new_enrollment_answers_with_it(site: Site) -> None:
    response = site.api.create_enrollment(invitation_for())
    assert response.status_code == 201, response.text
    fetched = site.api.get(response.headers["location"].removeprefix("/api/v1"))
    assert fetched.status_code == 200
    shown = fetched.json()
    assert "one_time_password" not in shown
    created = response.json()
    assert shown == {
        key: value
        for key, value in created.items()
        if key not in ("enrollment_url", "one_time_password")
    }


def test_invitation_mail_is_queued_with_the_url_and_without_the_one_time_password(
    site: Site, services: Services
) -> None:
    body = invitation_for()
    created = site.api.created(body)
    (mail,) = mails_to(services.engine, body["email"])
    assert created["enrollment_url"] in text_of(mail)
    assert created["one_time_password"] not in mail.as_string()


def test_the_one_time_password_works_in_the_users_enrollment_step(
    site: Site, services: Services
) -> None:
    created = site.api.created(invitation_for())
    row = services.enrollments.verify_one_time_password(
        created["id"], created["one_time_password"], now=services.now()
    )
    assert row.status == "otp_verified"


def test_a_return_url_on_the_sites_list_is_kept(site: Site) -> None:
    created = site.api.created(invitation_for(return_url=RETURN_URL))
    assert created["return_url"] == RETURN_URL


def test_a_return_url_not_on_the_sites_list_is_422_pointing_at_it_and_nothing_is_made(
    site: Site, services: Services
) -> None:
    response = site.api.create_enrollment(
        invitation_for(return_url="https://relying.example/return/../elsewhere")
    )
    problem = problem_of(response, 422, "invalid-request")
    assert problem["errors"][0]["pointer"] == "/return_url"
    assert enrollment_count(services.engine, site.row.id) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_id", "\u0430lice"), ("user_id", "alice\u202e"), ("display_name", "Al\u202eice")],
    ids=["look-alike-user-id", "rtl-override-user-id", "rtl-override-name"],
)
def test_a_look_alike_or_bidi_override_is_422_pointing_at_it(
    site: Site, services: Services, field: str, value: str
) -> None:
    response = site.api.create_enrollment(
        invitation_for(**{"email": "alice@example.jp", field: value})
    )
    problem = problem_of(response, 422, "invalid-request")
    assert [error["pointer"] for error in problem["errors"]] == [f"/{field}"]
    assert enrollment_count(services.engine, site.row.id) == 0


def test_an_unknown_field_is_422_pointing_at_it(site: Site, services: Services) -> None:
    response = site.api.create_enrollment(invitation_for(nickname="Al"))
    problem = problem_of(response, 422, "invalid-request")
    assert [error["pointer"] for error in problem["errors"]] == ["/nickname"]
    assert enrollment_count(services.engine, site.row.id) == 0


def test_a_missing_required_field_is_422_pointing_at_it(site: Site) -> None:
    response = site.api.create_enrollment({"user_id": "alice"})
    problem = problem_of(response, 422, "invalid-request")
    assert [error["pointer"] for error in problem["errors"]] == ["/email"]


def test_a_json_body_that_is_not_an_object_is_422_pointing_at_the_whole_body(site: Site) -> None:
    response = site.api.post("/enrollments", content=b'["alice", "alice@example.jp"]')
    problem = problem_of(response, 422, "invalid-request")
    # RFC 6901: "" is the whole document; "/" would be a member named "".
    assert [error["pointer"] for error in problem["errors"]] == [""]


def test_the_pointer_to_an_unknown_field_escapes_slash_and_tilde_as_rfc_6901_says(
    site: Site,
) -> None:
    response = site.api.create_enrollment(invitation_for() | {"a/b~c": 1})
    problem = problem_of(response, 422, "invalid-request")
    assert [error["pointer"] for error in problem["errors"]] == ["/a~1b~0c"]


def test_malformed_json_is_400(site: Site, services: Services) -> None:
    response = site.api.post("/enrollments", content=b'{"user_id": "alice", ')
    problem_of(response, 400, "malformed-json")
    assert enrollment_count(services.engine, site.row.id) == 0


def test_a_body_over_64_kib_is_413(site: Site, services: Services) -> None:
    oversized = invitation_for(display_name="x" * MAX_BODY_BYTES)
    response = site.api.create_enrollment(oversized)
    problem_of(response, 413, "too-large")
    assert enrollment_count(services.engine, site.row.id) == 0


def test_a_body_over_64_kib_sent_without_a_length_is_413_too(site: Site) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"user_id": "alice", "email": "alice@example.jp", "display_name": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = site.api.post("/enrollments", content=chunks())
    assert "content-length" not in response.request.headers
    problem_of(response, 413, "too-large")
