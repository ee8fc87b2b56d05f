"""What the enrollment service hands out: invitations and download credentials."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Invitation:
    """A new enrollment: the URL for the user, and the one-time password, shown once."""

    enrollment_id: str
    enrollment_url: str
    one_time_password: str
    expires_at: dt.datetime
    certificate_user_id: str


@dataclass(frozen=True)
class DownloadCredentials:
    """What the user must note: the certificate user ID and the download password (once)."""

    certificate_user_id: str
    download_password: str
    deadline: dt.datetime
