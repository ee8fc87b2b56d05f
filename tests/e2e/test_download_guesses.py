"""Wrong download passwords against the real server over TLS: no user-ID oracle, no lock
(issue 17, finding 5)."""

from __future__ import annotations

import datetime as dt
import re
import time

import httpx
from cryptography.hazmat.primitives.serialization import pkcs12

from pwa_server.enrollment.models import DownloadCredentials
from pwa_server.runtime import Services
from testbed.serving import ShomeiServer

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def _ready(services: Services, user: str) -> DownloadCredentials:
    now = dt.datetime.now(dt.UTC)
    invitation = services.enrollments.create(user_id=user, email=f"{user}@example.jp", now=now)
    services.enrollments.verify_one_time_password(
        invitation.enrollment_id, invitation.one_time_password, now=now
    )
    return services.enrollments.register_secret(
        invitation.enrollment_id,
        question="first-pet",
        answer="Pochi",
        answer_confirm="Pochi",
        now=now,
    )


def _post(client: httpx.Client, server: ShomeiServer, cuid: str, password: str) -> httpx.Response:
    """A phone's download form: loaded (session and CSRF token), then sent."""
    form = client.get(f"{server.base_url}/download")
    found = _CSRF.search(form.text)
    assert form.status_code == 200
    assert found is not None
    return client.post(
        f"{server.base_url}/download",
        data={
            "csrf_token": found.group(1),
            "certificate_user_id": cuid,
            "download_password": password,
            "platform": "android",
        },
    )


def _masked(page: str, cuid: str) -> str:
    """The page without what differs by request: its CSRF token, and the ID typed in."""
    return _CSRF.sub('name="csrf_token" value=""', page).replace(cuid, "shm-XXXXXXXX")


def test_a_wrong_password_for_an_existing_and_an_unknown_id_gives_the_same_page(
    server: ShomeiServer, services: Services
) -> None:
    # The existing ID answered "5 tries left" after 0.8-2 s, an unknown one a generic page.
    existing = _ready(services, "oracle-existing").certificate_user_id
    unknown = "shm-" + "2" * (len(existing) - 4)
    with server.client() as client:
        answers = {
            cuid: _post(client, server, cuid, "wrong-password") for cuid in (existing, unknown)
        }
    assert {answer.status_code for answer in answers.values()} == {400}
    assert answers[existing].headers["content-type"] == answers[unknown].headers["content-type"]
    assert _masked(answers[existing].text, existing) == _masked(answers[unknown].text, unknown)


def test_six_wrong_download_passwords_do_not_stop_the_right_one_after_the_wait(
    server: ShomeiServer, services: Services
) -> None:
    issued = _ready(services, "throttled-owner")
    cuid = issued.certificate_user_id
    refused = []
    with server.client() as client:
        for _ in range(6):
            refused.append(_post(client, server, cuid, "wrong-password"))
        assert [answer.status_code for answer in refused] == [400] * 5 + [429]
        wait = int(refused[-1].headers["retry-after"])
        assert 1 <= wait <= 2
        time.sleep(wait + 0.2)
        download = _post(client, server, cuid, issued.download_password)
    assert download.status_code == 200, download.text
    _, certificate, _ = pkcs12.load_key_and_certificates(
        download.content, issued.download_password.encode()
    )
    assert certificate is not None
