"""The configurable rules of enrollment, and the secret questions users pick from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pwa_server.enrollment.throttle import ThrottlePolicy
from pwa_server.settings import Settings

# Identifiers only: the questions' texts are user-facing and live in the translation catalogue
# (pwa_server/web/questions.py), in Japanese and English.
SECRET_QUESTIONS = (
    "first-school",
    "childhood-friend",
    "first-pet",
    "favourite-teacher",
    "birth-city-of-mother",
    "first-concert",
)
MAX_ANSWER_LENGTH = 200


@dataclass(frozen=True)
class EnrollmentPolicy:
    """Limits and windows (seed defaults: 6 tries, 1 download within 3 days, 30 days), and
    the waits after wrong download passwords."""

    expiry: dt.timedelta
    max_failures: int
    downloads_allowed: int
    download_window: dt.timedelta
    download_period: dt.timedelta
    validity: dt.timedelta
    organization: str
    download_throttle: ThrottlePolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> EnrollmentPolicy:
        days = dt.timedelta(days=1)
        return cls(
            expiry=settings.enrollment_expiry_days * days,
            max_failures=settings.one_time_password_max_failures,
            downloads_allowed=settings.downloads_allowed,
            download_window=settings.download_window_days * days,
            download_period=settings.enrollment_expiry_days * days,
            validity=settings.certificate_validity_days * days,
            organization=settings.ca_organization,
            download_throttle=ThrottlePolicy(
                base_delay=dt.timedelta(seconds=settings.download_throttle_seconds)
            ),
        )
