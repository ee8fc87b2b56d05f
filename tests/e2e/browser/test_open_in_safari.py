"""Chromium as an iPhone 13 running Chrome (its CriOS agent), in Japanese: the "open in
Safari" page before the download, its copy button, and a full-page screenshot kept in
var/screenshots/ for a person to look at; an iPad's desktop agent with touch gets the profile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from testbed.serving import ShomeiServer
from tests.e2e.browser.conftest import watch
from tests.web.test_user_agent import IPAD_SAFARI, IPHONE_CHROME

OpenContext = Callable[..., BrowserContext]
# Kept after the run (var/ is the repository's ignored working folder).
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots" / "browser"


@pytest.mark.parametrize(
    ("locale", "heading", "copied"),
    [
        (
            "ja-JP",
            "このページを Safari で開いてください",
            "コピーしました。Safari を開いて貼り付けてください。",
        ),
        ("en-US", "Please open this page in Safari", "Copied. Now open Safari and paste it."),
    ],
)
def test_iphone_chrome_is_sent_to_safari_with_a_link_it_can_copy(
    open_context: OpenContext, server: ShomeiServer, locale: str, heading: str, copied: str
) -> None:
    context = open_context(
        "iphone",
        locale=locale,
        user_agent=IPHONE_CHROME,
        permissions=["clipboard-read", "clipboard-write"],
    )
    watched = watch(context)
    page = watched.page

    page.goto(f"{server.base_url}/download")

    assert watched.h1() == heading
    assert page.locator("#page-link").inner_text() == f"{server.base_url}/download"
    page.locator("#copy-link").click()
    assert page.locator("#copy-done").inner_text() == copied
    assert page.evaluate("navigator.clipboard.readText()") == f"{server.base_url}/download"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"open-in-safari-iphone-chrome-{locale}.png", full_page=True)
    page.locator(".stay a").click()
    page.wait_for_url("**/download?browser=this")
    assert page.locator("[name=download_password]").count() == 1
    assert watched.problems == []


def test_ipad_with_a_desktop_agent_gets_the_profile_chosen_by_touch(
    open_context: OpenContext, server: ShomeiServer
) -> None:
    ipad = open_context(
        locale="ja-JP", user_agent=IPAD_SAFARI, viewport={"width": 820, "height": 1180}
    )
    watched = watch(ipad)
    # An iPad reports 5 touch points (Playwright's has_touch reports 1); a Mac reports 0.
    ipad.new_cdp_session(watched.page).send(
        "Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5}
    )
    mac = watch(open_context(locale="ja-JP", user_agent=IPAD_SAFARI))

    for each in (watched, mac):
        each.page.goto(f"{server.base_url}/download")
        each.page.wait_for_load_state("load")

    assert watched.page.locator("input[value=ios]").is_checked()
    assert mac.page.locator("input[value=other]").is_checked()
    assert watched.problems == mac.problems == []


def test_check_in_iphone_chrome_says_to_retry_in_safari(
    open_context: OpenContext, server: ShomeiServer
) -> None:
    watched = watch(
        open_context("iphone", locale="ja-JP", user_agent=IPHONE_CHROME, service_workers="block")
    )
    page = watched.page

    page.goto(f"{server.check_url}/check")

    assert page.locator("#check-result").get_attribute("data-status") == "missing"
    assert page.locator("#page-link").inner_text() == f"{server.check_url}/check"
    assert page.locator("#copy-link").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "check-missing-iphone-chrome-ja.png", full_page=True)
    assert watched.problems == []
