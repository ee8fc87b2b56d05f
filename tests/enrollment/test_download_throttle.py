"""Wrong download passwords are throttled per certificate user ID and client network, and per
client network, alike for existing and unknown IDs; nothing locks (issue 17, finding 5)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time

import pytest
from sqlalchemy import select

from pwa_server.enrollment.download import WRONG_ANSWER_SECONDS
from pwa_server.enrollment.errors import DownloadThrottledError, WrongDownloadCredentialsError
from pwa_server.enrollment.throttle import ThrottlePolicy, client_network
from pwa_server.store.tables import guess_throttles
from tests.enrollment.conftest import Enrolling


def _throttles(enrolling: Enrolling) -> dict[str, tuple[int, dt.datetime | None]]:
    with enrolling.engine.connect() as connection:
        rows = connection.execute(select(guess_throttles)).all()
    return {row.key: (row.failures, row.retry_at) for row in rows}


def test_an_unknown_id_is_counted_and_answered_like_a_wrong_password_for_an_existing_one(
    enrolling: Enrolling,
) -> None:
    invitation, _ = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    unknown = "shm-" + "2" * (len(cuid) - 4)
    free = enrolling.policy.download_throttle.free_per_id
    for name in (cuid, unknown):
        for _ in range(free):
            with pytest.raises(WrongDownloadCredentialsError):
                enrolling.download_from("192.0.2.1", name, "wrong-password")
        with pytest.raises(DownloadThrottledError):
            enrolling.download_from("192.0.2.1", name, "wrong-password")
    throttles = _throttles(enrolling)
    assert throttles[f"id:{cuid}@192.0.2.1"] == throttles[f"id:{unknown}@192.0.2.1"]
    assert throttles["client:192.0.2.1"][0] == 2 * free


def test_failures_from_one_network_do_not_hold_back_the_owner_elsewhere(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    for _ in range(20):
        with contextlib.suppress(WrongDownloadCredentialsError, DownloadThrottledError):
            enrolling.download_from("2001:db8:1:2::99", cuid, "wrong-password")
    with pytest.raises(DownloadThrottledError):
        # The same /64: the attacker's other addresses wait too.
        enrolling.download_from("2001:db8:1:2::1", cuid, password)
    enrolling.download_from("198.51.100.4", cuid, password)


def test_the_wait_doubles_after_the_free_failures_up_to_an_hour() -> None:
    policy = ThrottlePolicy(base_delay=dt.timedelta(seconds=1))
    free = policy.free_per_id
    assert policy.delay_after(free - 1, free) is None
    assert [policy.delay_after(free + n, free) for n in range(3)] == [
        dt.timedelta(seconds=1),
        dt.timedelta(seconds=2),
        dt.timedelta(seconds=4),
    ]
    assert policy.delay_after(free + 1000, free) == dt.timedelta(hours=1)


def test_client_networks_are_ipv4_addresses_and_ipv6_slash_64s() -> None:
    assert client_network("192.0.2.1") == "192.0.2.1"
    assert client_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_network(None) == "unknown"
    assert client_network("not an address") == "unknown"


def test_wrong_passwords_for_existing_and_unknown_ids_wait_out_the_same_floor(
    enrolling: Enrolling,
) -> None:
    # An existing ID's failure is audited too: it took ~2 ms longer than an unknown one's.
    # (Compared with the floor only: a loaded machine moves both paths by more than 2 ms.)
    invitation, _ = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    unknown = "shm-" + "2" * (len(cuid) - 4)
    seconds: dict[str, list[float]] = {cuid: [], unknown: []}
    for attempt in range(4):
        for name in (cuid, unknown):
            started = time.monotonic()
            with pytest.raises(WrongDownloadCredentialsError):
                enrolling.download_from(f"192.0.2.{attempt}", name, "wrong-password")
            seconds[name].append(time.monotonic() - started)
    assert min(seconds[cuid] + seconds[unknown]) >= WRONG_ANSWER_SECONDS
