"""The enrollment forms as a thumb and an eye meet them: tap targets of 44 x 44 px on an
iPhone 13, text contrast of 4.5:1 in light and dark, the "show password" button, and the
certificate user ID already filled in on the download page. Each page is also saved as a
full-page screenshot (phone and desktop, light and dark) into var/screenshots/browser/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from testbed.serving import ShomeiServer
from tests.e2e.browser.conftest import InvitationPool, device, watch
from tests.e2e.browser.journey import enter_one_time_password, register_secret_question
from tests.web.test_user_agent import IPHONE_CHROME

OpenContext = Callable[..., BrowserContext]
Scheme = Literal["light", "dark"]
SCHEMES: tuple[Scheme, ...] = ("light", "dark")
# WCAG 2.5.5 (target size, enhanced) and 1.4.3 (contrast, minimum) for normal text.
TARGET_PX = 44
CONTRAST = 4.5
# What Chromium paints behind a page without a background, per colour scheme.
CANVAS = {"light": (255.0, 255.0, 255.0), "dark": (18.0, 18.0, 18.0)}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "locale": "en-US"}
SHOW_PASSWORD = {"iphone": "パスワードを表示", "desktop": "Show password"}

# Each visible link, button and form control, measured as the thing a finger hits: a radio
# button's whole row (its label) when it has one.
_TARGETS = """
() => [...document.querySelectorAll("a, button, input, select, textarea")]
  .filter((element) => element.getClientRects().length > 0)
  .map((element) => {
    const target = element.closest("label") || element;
    const box = target.getBoundingClientRect();
    return { what: target.outerHTML.slice(0, 90), width: box.width, height: box.height };
  })
"""
# Each element showing text (its own text nodes, or a control's value): its colour and the
# background colours from it outwards, up to the first opaque one.
_TEXTS = """
() => {
  const shown = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    if (walker.currentNode.textContent.trim()) shown.add(walker.currentNode.parentElement);
  }
  document.querySelectorAll("input:not([type=hidden]):not([type=radio]), select")
    .forEach((control) => shown.add(control));
  return [...shown]
    .filter((element) => element.getClientRects().length > 0)
    .map((element) => {
      const layers = [];
      for (let at = element; at; at = at.parentElement) {
        const background = getComputedStyle(at).backgroundColor;
        layers.push(background);
        if (background.startsWith("rgb(")) break;
      }
      const text = (element.value || element.textContent || "").trim().slice(0, 40);
      return { text, color: getComputedStyle(element).color, layers };
    });
}
"""
_RGB = re.compile(r"rgba?\(([\d.]+),? ([\d.]+),? ([\d.]+)(?:,? /? ?([\d.]+))?\)")


def _rgba(css: str) -> tuple[float, float, float, float]:
    parsed = _RGB.fullmatch(css.strip())
    assert parsed, f"not an rgb() colour: {css}"
    red, green, blue, alpha = parsed.groups()
    return float(red), float(green), float(blue), 1.0 if alpha is None else float(alpha)


def _over(css: str, below: tuple[float, float, float]) -> tuple[float, float, float]:
    red, green, blue, alpha = _rgba(css)
    return (
        alpha * red + (1 - alpha) * below[0],
        alpha * green + (1 - alpha) * below[1],
        alpha * blue + (1 - alpha) * below[2],
    )


def _luminance(rgb: tuple[float, float, float]) -> float:
    def linear(channel: float) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(
    foreground: tuple[float, float, float], back: tuple[float, float, float]
) -> float:
    """WCAG 2's contrast ratio of two opaque sRGB colours."""
    lighter, darker = sorted((_luminance(foreground), _luminance(back)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_ratio_matches_wcag_examples() -> None:
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21)
    # The error text of before: #b00020 on Chromium's dark canvas.
    assert contrast_ratio((176, 0, 32), CANVAS["dark"]) == pytest.approx(2.56, abs=0.01)


@dataclass
class Seen:
    """What one walk through the enrollment forms measured."""

    small_targets: list[str] = field(default_factory=list)
    low_contrast: list[str] = field(default_factory=list)
    shown_user_id: str = ""
    prefilled_user_id: str = ""
    toggled: list[tuple[str | None, str | None]] = field(default_factory=list)
    show_buttons: int = 0
    problems: list[str] = field(default_factory=list)


def _look(page: Page, seen: Seen, directory: Path, name: str, *, phone: bool) -> None:
    """Screenshot `page` light and dark, and note what is too small or too faint."""
    if phone:
        seen.small_targets += [
            f"{name}: {target['width']:.0f}x{target['height']:.0f} {target['what']}"
            for target in page.evaluate(_TARGETS)
            if target["width"] < TARGET_PX or target["height"] < TARGET_PX
        ]
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=directory / f"{name}-{scheme}.png", full_page=True)
        for text in page.evaluate(_TEXTS):
            back = CANVAS[scheme]
            for layer in reversed(text["layers"]):
                back = _over(layer, back)
            ratio = contrast_ratio(_over(text["color"], back), back)
            if ratio < CONTRAST:
                seen.low_contrast.append(f"{name} {scheme}: {ratio:.2f} {text['text']!r}")
    page.emulate_media(color_scheme="light")


def walk_forms(
    context: BrowserContext,
    invitations: InvitationPool,
    server: ShomeiServer,
    directory: Path,
    *,
    phone: bool,
    show_password: str,
) -> Seen:
    """One-time password (wrong, then right), secret question, download password, download
    (a wrong password, then the toggle), each page looked at."""
    seen = Seen()
    watched = watch(context)
    page = watched.page
    invitation = invitations.take()

    def look(name: str) -> None:
        _look(page, seen, directory, name, phone=phone)

    page.goto(invitation.enrollment_url)
    look("1-one-time-password")
    page.locator("[name=one_time_password]").fill("000000")
    page.locator("form button[type=submit]").click()
    page.locator(".error").wait_for()
    look("1-one-time-password-wrong")
    enter_one_time_password(page, invitation)
    look("2-secret-question")
    register_secret_question(page)
    look("3-download-password")
    seen.shown_user_id = page.locator("#certificate-user-id").inner_text().strip()

    page.locator("main a[href='/download']").click()
    page.wait_for_url("**/download")
    look("4-download")
    seen.prefilled_user_id = page.locator("[name=certificate_user_id]").input_value()
    field_ = page.locator("[name=download_password]")
    button = page.get_by_role("button", name=show_password)
    seen.show_buttons = button.count()
    seen.toggled.append((field_.get_attribute("type"), button.get_attribute("aria-pressed")))
    for _ in range(2):
        button.click()
        seen.toggled.append((field_.get_attribute("type"), button.get_attribute("aria-pressed")))

    field_.fill("wrong-password")
    page.locator("form button[type=submit]").click()
    page.locator(".error").wait_for()
    look("4-download-wrong")
    for name, url in [
        ("5-reissue", f"{server.base_url}/reissue"),
        ("0-home", f"{server.base_url}/"),
        ("6-guide-ios", f"{server.base_url}/guide/ios"),
        ("6-guide-android", f"{server.base_url}/guide/android"),
        ("7-check-without-certificate", f"{server.check_url}/check"),
        ("8-enrollment-link-used", invitation.enrollment_url),
    ]:
        page.goto(url)
        look(name)
    # The wrong entries and the used link are answered with 4xx, which Chromium logs: no fault
    # of the page.
    seen.problems = [problem for problem in watched.problems if "status of 4" not in problem]
    return seen


@pytest.fixture(scope="module")
def walks(
    browser: Browser,
    playwright: Playwright,
    invitations: InvitationPool,
    server: ShomeiServer,
    screenshots: Path,
) -> Iterator[Callable[[str], Seen]]:
    """Each of "iphone" (iPhone 13, ja-JP) and "desktop" (1280 px, en-US) walks once."""
    walked: dict[str, Seen] = {}
    contexts: list[BrowserContext] = []

    def of(name: str) -> Seen:
        if name not in walked:
            options = (
                {**device(playwright, name), "locale": "ja-JP"} if name == "iphone" else DESKTOP
            )
            context = browser.new_context(**options, ignore_https_errors=False)
            contexts.append(context)
            directory = screenshots / f"forms-{name}"
            directory.mkdir(exist_ok=True)
            walked[name] = walk_forms(
                context,
                invitations,
                server,
                directory,
                phone=name == "iphone",
                show_password=SHOW_PASSWORD[name],
            )
        return walked[name]

    yield of
    for context in contexts:
        context.close()


def test_every_link_button_and_radio_row_is_44_px_on_an_iphone_13(
    walks: Callable[[str], Seen],
) -> None:
    assert walks("iphone").small_targets == []


@pytest.mark.parametrize("name", ["iphone", "desktop"])
def test_all_text_has_a_contrast_of_4_5_in_light_and_dark(
    walks: Callable[[str], Seen], name: str
) -> None:
    assert walks(name).low_contrast == []


@pytest.mark.parametrize("name", ["iphone", "desktop"])
def test_download_page_has_the_certificate_user_id_filled_in(
    walks: Callable[[str], Seen], name: str
) -> None:
    seen = walks(name)
    assert seen.shown_user_id
    assert seen.prefilled_user_id == seen.shown_user_id


@pytest.mark.parametrize("name", ["iphone", "desktop"])
def test_show_password_button_turns_the_field_to_text_and_back(
    walks: Callable[[str], Seen], name: str
) -> None:
    seen = walks(name)
    assert seen.show_buttons == 1
    assert seen.toggled == [("password", "false"), ("text", "true"), ("password", "false")]
    assert seen.problems == []


def test_without_javascript_the_download_password_stays_hidden_and_no_button_shows(
    open_context: OpenContext, server: ShomeiServer
) -> None:
    page = open_context("iphone", locale="ja-JP", java_script_enabled=False).new_page()
    page.goto(f"{server.base_url}/download")

    assert page.locator("[name=download_password]").get_attribute("type") == "password"
    assert not page.locator("button.reveal").is_visible()


def test_open_in_safari_page_has_44_px_targets_and_4_5_contrast(
    open_context: OpenContext, server: ShomeiServer, screenshots: Path
) -> None:
    page = open_context("iphone", locale="ja-JP", user_agent=IPHONE_CHROME).new_page()
    directory = screenshots / "forms-iphone-chrome"
    directory.mkdir(exist_ok=True)
    seen = Seen()

    page.goto(f"{server.base_url}/download")
    _look(page, seen, directory, "open-in-safari", phone=True)
    page.locator(".stay a").click()
    page.wait_for_url("**/download?browser=this")
    _look(page, seen, directory, "download-in-chrome", phone=True)

    assert seen.small_targets == []
    assert seen.low_contrast == []
