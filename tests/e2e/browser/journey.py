"""The smartphone journey as a person walks it in the browser, by the fields' names."""

from __future__ import annotations

import plistlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright

from tests.e2e.browser.conftest import Invitation, Watched, device, watch

ANSWER = "Tama the cat"


@dataclass
class Step:
    """One page of the journey as the browser showed it."""

    url: str
    lang: str
    h1: str


@dataclass
class Journey:
    """What one walk through the journey saw and brought home."""

    device: str
    locale: str
    steps: dict[str, Step] = field(default_factory=dict)
    certificate_user_id: str = ""
    download_password: str = ""
    preselected_platform: str | None = None
    suggested_filename: str = ""
    download: Path | None = None
    problems: list[str] = field(default_factory=list)


def _record(watched: Watched, journey: Journey, name: str) -> None:
    page = watched.page
    journey.steps[name] = Step(
        page.url, page.locator("html").get_attribute("lang") or "", watched.h1()
    )


def enter_one_time_password(page: Page, invitation: Invitation) -> None:
    """On the enrollment page: type the one-time password and go on to the secret question."""
    page.locator("[name=one_time_password]").fill(invitation.one_time_password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/secret")


def register_secret_question(page: Page) -> None:
    """On the secret question page: choose, answer twice, and reach the download password."""
    # Not the first question: the choice must really travel.
    question = page.locator("select[name=question] option").nth(1).get_attribute("value")
    assert question
    page.locator("select[name=question]").select_option(question)
    page.locator("[name=answer]").fill(ANSWER)
    page.locator("[name=answer_confirm]").fill(ANSWER)
    page.locator("form button[type=submit]").click()
    page.locator("#download-password").wait_for()


def walk(
    playwright: Playwright,
    browser: Browser,
    invitation: Invitation,
    *,
    device_name: str,
    locale: str,
    directory: Path,
) -> Journey:
    """One-time password, secret question, download password, download; in one context."""
    journey = Journey(device_name, locale)
    context = browser.new_context(
        **device(playwright, device_name), locale=locale, ignore_https_errors=False
    )
    try:
        watched = watch(context)
        page = watched.page

        response = page.goto(invitation.enrollment_url)
        assert response is not None
        assert response.status == 200, page.content()
        _record(watched, journey, "one_time_password")
        enter_one_time_password(page, invitation)

        _record(watched, journey, "secret_question")
        register_secret_question(page)

        _record(watched, journey, "download_password")
        journey.certificate_user_id = page.locator("#certificate-user-id").inner_text().strip()
        groups = page.locator("#download-password span").all_inner_texts()
        journey.download_password = "".join(group.strip() for group in groups)

        page.locator("main a[href='/download']").click()
        page.wait_for_url("**/download")
        _record(watched, journey, "download")
        journey.preselected_platform = page.locator("input[name=platform]:checked").get_attribute(
            "value"
        )
        page.locator("[name=certificate_user_id]").fill(journey.certificate_user_id)
        page.locator("[name=download_password]").fill(journey.download_password)
        with page.expect_download() as info:
            page.locator("form button[type=submit]").click()
        download = info.value
        assert download.failure() is None
        journey.suggested_filename = download.suggested_filename
        journey.download = directory / f"{device_name}-{download.suggested_filename}"
        download.save_as(journey.download)
        journey.problems = watched.problems
    finally:
        context.close()
    return journey


def pkcs12_of(journey: Journey, directory: Path) -> Path:
    """The PKCS#12 the phone installs: the .p12 itself, or the one inside the .mobileconfig."""
    assert journey.download is not None
    if journey.download.suffix == ".p12":
        return journey.download
    plist = directory / f"{journey.device}.plist"
    unwrapped = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-noverify",
            "-in",
            str(journey.download),
            "-out",
            str(plist),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert unwrapped.returncode == 0, unwrapped.stderr
    profile = plistlib.loads(plist.read_bytes())
    payloads = [
        payload
        for payload in profile["PayloadContent"]
        if payload["PayloadType"] == "com.apple.security.pkcs12"
    ]
    assert len(payloads) == 1, profile
    extracted = directory / f"{journey.device}-extracted.p12"
    extracted.write_bytes(payloads[0]["PayloadContent"])
    return extracted
