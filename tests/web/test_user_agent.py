"""The user agents of real phones and browsers, parsed into platform and browser."""

from __future__ import annotations

import pytest

from pwa_server.enrollment.download import Platform
from pwa_server.web.user_agent import UserAgent, parse_user_agent

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
IPHONE_CHROME = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
)
IPHONE_FIREFOX = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15"
)
IPHONE_EDGE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 EdgiOS/126.2592.56 Mobile/15E148 Safari/605.1.15"
)
IPHONE_LINE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Safari Line/14.10.0"
)
IPHONE_INSTAGRAM = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 337.0.3.23.54 (iPhone14,5; iOS 17_5; ja_JP)"
)
IPHONE_FACEBOOK = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.43.108;FBBV/600000000]"
)
# iPadOS Safari asks for desktop pages by default: the agent is a Mac's.
IPAD_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)
SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
ANDROID_LINE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 Line/14.10.1"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (IPHONE_SAFARI, UserAgent(Platform.IOS)),
        (IPHONE_CHROME, UserAgent(Platform.IOS, ios_browser_not_safari="Chrome")),
        (IPHONE_FIREFOX, UserAgent(Platform.IOS, ios_browser_not_safari="Firefox")),
        (IPHONE_EDGE, UserAgent(Platform.IOS, ios_browser_not_safari="Edge")),
        (IPHONE_LINE, UserAgent(Platform.IOS, ios_browser_not_safari="LINE")),
        (IPHONE_INSTAGRAM, UserAgent(Platform.IOS, ios_browser_not_safari="Instagram")),
        (IPHONE_FACEBOOK, UserAgent(Platform.IOS, ios_browser_not_safari="Facebook")),
        (IPAD_SAFARI, UserAgent(Platform.OTHER, maybe_ipad=True)),
        (ANDROID_CHROME, UserAgent(Platform.ANDROID)),
        (SAMSUNG_INTERNET, UserAgent(Platform.ANDROID)),
        (ANDROID_LINE, UserAgent(Platform.ANDROID)),
        (DESKTOP_CHROME, UserAgent(Platform.OTHER)),
        ("", UserAgent(Platform.OTHER)),
    ],
    ids=[
        "iphone-safari",
        "iphone-chrome",
        "iphone-firefox",
        "iphone-edge",
        "iphone-line",
        "iphone-instagram",
        "iphone-facebook",
        "ipad-safari-desktop-agent",
        "android-chrome",
        "samsung-internet",
        "android-line",
        "desktop-chrome",
        "no-header",
    ],
)
def test_user_agent_gives_platform_and_ios_browser(header: str, expected: UserAgent) -> None:
    assert parse_user_agent(header) == expected


def test_ipad_chrome_asking_for_desktop_pages_is_still_ios_chrome() -> None:
    ipad_chrome = IPAD_SAFARI.replace("Version/17.5", "CriOS/126.0.6478.54")
    assert parse_user_agent(ipad_chrome) == UserAgent(Platform.IOS, ios_browser_not_safari="Chrome")
