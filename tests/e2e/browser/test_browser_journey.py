"""Headless Chromium as an iPhone 13 (Japanese) and a Pixel 7 (English): the enrollment
journey by the fields' names, the certificate presented to the installation check, the
language switch, a 320 px screen, and clean consoles."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright

from testbed.serving import ShomeiServer
from tests.e2e.browser.conftest import InvitationPool, watch
from tests.e2e.browser.journey import (
    Journey,
    enter_one_time_password,
    pkcs12_of,
    register_secret_question,
    walk,
)

OpenContext = Callable[..., BrowserContext]
KANA = re.compile(r"[\u3040-\u30ff]")


@dataclass(frozen=True)
class Expected:
    """What each phone should see, in its language."""

    locale: str
    lang: str
    platform: str
    suffix: str
    h1: dict[str, str]
    installed: str


EXPECTED = {
    "iphone": Expected(
        locale="ja-JP",
        lang="ja",
        platform="ios",
        suffix=".mobileconfig",
        h1={
            "one_time_password": "ワンタイムパスワードの入力",
            "secret_question": "秘密の質問の登録",
            "download_password": "ダウンロードパスワードを控えてください",
            "download": "証明書のダウンロード",
        },
        installed="インストールされ",
    ),
    "pixel": Expected(
        locale="en-US",
        lang="en",
        platform="android",
        suffix=".p12",
        h1={
            "one_time_password": "Enter your one-time password",
            "secret_question": "Register a secret question",
            "download_password": "Note your download password",
            "download": "Download your certificate",
        },
        installed="installed and usable",
    ),
}


class Journeys:
    """Each phone walks the journey once; the tests share what it saw and downloaded."""

    def __init__(
        self,
        playwright: Playwright,
        browser: Browser,
        invitations: InvitationPool,
        directory: Path,
    ) -> None:
        self.playwright = playwright
        self.browser = browser
        self.invitations = invitations
        self.directory = directory
        self._walked: dict[str, Journey | BaseException] = {}

    def of(self, device_name: str) -> Journey:
        if device_name not in self._walked:
            try:
                self._walked[device_name] = walk(
                    self.playwright,
                    self.browser,
                    self.invitations.take(),
                    device_name=device_name,
                    locale=EXPECTED[device_name].locale,
                    directory=self.directory,
                )
            except BaseException as error:
                self._walked[device_name] = error
                raise
        walked = self._walked[device_name]
        if isinstance(walked, BaseException):
            pytest.fail(f"the {device_name} journey failed in an earlier test: {walked!r}")
        return walked


@pytest.fixture(scope="module")
def journeys(
    invitations: InvitationPool,
    playwright: Playwright,
    browser: Browser,
    tmp_path_factory: pytest.TempPathFactory,
) -> Journeys:
    return Journeys(playwright, browser, invitations, tmp_path_factory.mktemp("downloads"))


@pytest.mark.parametrize("device_name", ["iphone", "pixel"])
def test_phone_walks_the_journey_in_its_language(journeys: Journeys, device_name: str) -> None:
    expected = EXPECTED[device_name]
    journey = journeys.of(device_name)

    assert {name: step.h1 for name, step in journey.steps.items()} == expected.h1
    assert {step.lang for step in journey.steps.values()} == {expected.lang}
    if expected.lang == "ja":
        assert all(KANA.search(step.h1) for step in journey.steps.values())
    assert re.fullmatch(r"[0-9A-Za-z_.@-]+", journey.certificate_user_id)
    assert len(journey.download_password) >= 12
    assert " " not in journey.download_password
    assert journey.preselected_platform == expected.platform
    assert journey.suggested_filename.endswith(expected.suffix)
    assert journey.download is not None
    assert journey.download.stat().st_size > 0


@pytest.mark.parametrize("device_name", ["iphone", "pixel"])
def test_downloaded_pkcs12_makes_the_check_page_say_installed(
    journeys: Journeys,
    open_context: OpenContext,
    server: ShomeiServer,
    tmp_path: Path,
    screenshots: Path,
    device_name: str,
) -> None:
    expected = EXPECTED[device_name]
    journey = journeys.of(device_name)
    pkcs12 = pkcs12_of(journey, tmp_path)
    origin = f"https://{urlsplit(server.check_url).netloc}"
    context = open_context(
        device_name,
        locale=expected.locale,
        client_certificates=[
            {"origin": origin, "pfxPath": str(pkcs12), "passphrase": journey.download_password}
        ],
        # Playwright presents the certificate through its own TLS proxy, whose certificate
        # Chromium would refuse for a service worker script: the worker is not under test here.
        service_workers="block",
    )
    watched = watch(context)

    response = watched.page.goto(f"{server.check_url}/check")

    assert response is not None
    assert response.status == 200
    result = watched.page.locator("#check-result")
    assert result.get_attribute("data-status") == "ok", watched.page.content()
    assert expected.installed in result.inner_text()
    assert journey.certificate_user_id in watched.page.locator("#check-summary").inner_text()
    # The technical details wait behind 「詳細」, closed.
    assert watched.page.locator("#check-details").get_attribute("open") is None
    for scheme in ("light", "dark"):
        watched.page.emulate_media(color_scheme=scheme)
        watched.page.screenshot(
            path=screenshots / f"check-{device_name}-{scheme}.png", full_page=True
        )
    assert watched.problems == []


def test_check_page_without_certificate_explains_it(
    open_context: OpenContext, server: ShomeiServer
) -> None:
    watched = watch(open_context("pixel", locale="en-US"))

    watched.page.goto(f"{server.check_url}/check")

    assert watched.page.locator("#check-result").get_attribute("data-status") == "missing"
    assert watched.problems == []


def test_language_switch_turns_a_japanese_page_english(
    open_context: OpenContext, server: ShomeiServer
) -> None:
    watched = watch(open_context("iphone", locale="ja-JP"))
    page = watched.page
    page.goto(f"{server.base_url}/download")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert watched.h1() == "証明書のダウンロード"

    page.locator("header a.lang").click()
    page.wait_for_url("**/download?lang=en")

    assert page.locator("html").get_attribute("lang") == "en"
    assert watched.h1() == "Download your certificate"
    # The choice sticks on the next page, whatever the phone's language, and switches back.
    page.goto(f"{server.base_url}/reissue")
    assert page.locator("html").get_attribute("lang") == "en"
    page.locator("header a.lang").click()
    page.wait_for_url("**/reissue?lang=ja")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert KANA.search(watched.h1())
    assert watched.problems == []


@pytest.mark.parametrize("locale", ["ja-JP", "en-US"])
def test_journey_pages_fit_a_320_px_screen(
    open_context: OpenContext, invitations: InvitationPool, server: ShomeiServer, locale: str
) -> None:
    invitation = invitations.take()
    context = open_context(
        locale=locale, viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True
    )
    watched = watch(context)
    page = watched.page
    widths: dict[str, list[int]] = {}

    def measure(name: str) -> None:
        widths[name] = page.evaluate(
            "[document.documentElement.clientWidth, document.documentElement.scrollWidth]"
        )

    page.goto(invitation.enrollment_url)
    measure("one-time password")
    enter_one_time_password(page, invitation)
    measure("secret question")
    register_secret_question(page)
    measure("download password")
    page.goto(f"{server.base_url}/download")
    measure("download")

    assert all(client == 320 and scroll <= 320 for client, scroll in widths.values()), widths
    assert watched.problems == []


@pytest.mark.parametrize("device_name", ["iphone", "pixel"])
def test_journey_pages_have_no_console_errors_or_csp_violations(
    journeys: Journeys, device_name: str
) -> None:
    assert journeys.of(device_name).problems == []


@pytest.mark.parametrize("path", ["/", "/guide/ios", "/guide/android", "/reissue"])
def test_other_pages_have_no_console_errors_or_csp_violations(
    open_context: OpenContext, server: ShomeiServer, path: str
) -> None:
    watched = watch(open_context("iphone", locale="ja-JP"))

    response = watched.page.goto(f"{server.base_url}{path}")
    watched.page.wait_for_load_state("networkidle")

    assert response is not None
    assert response.status == 200
    assert watched.problems == []


def test_service_worker_registers_over_the_trusted_connection(
    open_context: OpenContext, server: ShomeiServer
) -> None:
    # Chromium refuses service workers on a certificate error: this also proves that the
    # browser trusts the server's certificate instead of ignoring errors.
    watched = watch(open_context("pixel", locale="en-US"))
    watched.page.goto(f"{server.base_url}/download")

    script = watched.page.evaluate(
        "navigator.serviceWorker.ready.then((registration) => registration.active.scriptURL)"
    )

    assert script == f"{server.base_url}/sw.js"
    assert watched.problems == []
