"""What the User-Agent header tells about the phone and the browser, parsed in one place.

Identities from an Apple configuration profile reach Safari only: Firefox on iPhone keeps a
downloaded .mobileconfig in its downloads list (mozilla-mobile/firefox-ios#7501, #25476), and
the in-app browsers of LINE, Instagram and Facebook have no download manager for it at all.
Chrome has handed profiles to Settings since version 95 (brave/brave-ios#4358), but our guides
follow Safari, and a certificate a profile installs is presented by Safari only, so every iOS
browser but Safari is sent to Safari first.

iPadOS Safari sends a Mac's user agent: the server cannot tell an iPad from a Mac, so
`maybe_ipad` only says that the page's script (navigator.maxTouchPoints) should decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pwa_server.enrollment.download import Platform

_IOS = re.compile(r"iPhone|iPad|iPod")
_ANDROID = re.compile(r"Android")
_MAC = re.compile(r"Macintosh")
# Tokens only iOS browsers other than Safari send (also in their iPad "desktop" agents),
# with the name a person knows the app by.
_NOT_SAFARI = (
    (re.compile(r"\bCriOS/"), "Chrome"),
    (re.compile(r"\bFxiOS/"), "Firefox"),
    (re.compile(r"\bEdgiOS/"), "Edge"),
    (re.compile(r"\bLine/"), "LINE"),
    (re.compile(r"\bInstagram\b"), "Instagram"),
    (re.compile(r"\bFBAN/|\bFBAV/"), "Facebook"),
)


@dataclass(frozen=True)
class UserAgent:
    """The phone's platform as far as the header shows it, and which browser asks."""

    platform: Platform
    # On iOS, the app that is not Safari ("Chrome", "LINE", …); None for Safari and elsewhere.
    ios_browser_not_safari: str | None = None
    # A Mac's agent: a Mac, or an iPad whose Safari asks for desktop pages.
    maybe_ipad: bool = False


def parse_user_agent(header: str) -> UserAgent:
    """The `UserAgent` of a User-Agent header value ('' when absent)."""
    for token, name in _NOT_SAFARI:
        if token.search(header) and (_IOS.search(header) or _MAC.search(header)):
            return UserAgent(Platform.IOS, ios_browser_not_safari=name)
    if _IOS.search(header):
        return UserAgent(Platform.IOS)
    if _ANDROID.search(header):
        return UserAgent(Platform.ANDROID)
    return UserAgent(Platform.OTHER, maybe_ipad=_MAC.search(header) is not None)
