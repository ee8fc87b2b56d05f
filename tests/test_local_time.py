"""Dates and times as users read them: in the operator's zone, written for their language."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from pwa_server.i18n import local_date, local_datetime

INSTANT = dt.datetime(2028, 12, 3, 6, 4, tzinfo=dt.UTC)
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("locale", "expected"), [("ja", "2028年12月3日"), ("en", "3 December 2028")]
)
def test_a_date_is_written_in_words_for_each_language(locale: str, expected: str) -> None:
    assert local_date(INSTANT, locale, TOKYO) == expected


def test_a_date_is_the_day_in_the_operator_zone_not_in_utc() -> None:
    late_evening_utc = dt.datetime(2028, 12, 2, 20, 0, tzinfo=dt.UTC)

    assert local_date(late_evening_utc, "ja", TOKYO) == "2028年12月3日"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ja", "2028年12月3日 15:04（日本時間）"), ("en", "3 December 2028, 15:04 (Japan Time)")],
)
def test_a_time_is_in_japan_time_and_says_so(locale: str, expected: str) -> None:
    assert local_datetime(INSTANT, locale, TOKYO) == expected


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Berlin", "3 December 2028, 07:04 (Central European Time)"),
        ("UTC", "3 December 2028, 06:04 (Coordinated Universal Time)"),
    ],
)
def test_another_zone_is_named_in_words(zone: str, expected: str) -> None:
    assert local_datetime(INSTANT, "en", zoneinfo.ZoneInfo(zone)) == expected
