"""WebAuthn challenges that carry the time they were issued.

The web layer keeps the challenge in the signed session, so an old session cookie replayed
with an old assertion would carry a matching challenge. Putting the issue time in front of the
random part lets us refuse old challenges, and lets each key remember the newest challenge it
answered: an assertion can never be used twice, even by authenticators whose signature counter
stays at zero (synced passkeys).
"""

from __future__ import annotations

import datetime as dt
import secrets

from pwa_server.officers.errors import ChallengeExpiredError
from pwa_server.officers.policy import CHALLENGE_MAX_AGE, CLOCK_SKEW

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_TIME_BYTES = 8
# WebAuthn asks for at least 16 random bytes; the time is not counted.
_RANDOM_BYTES = 32


def new_challenge(now: dt.datetime) -> bytes:
    """A fresh challenge: the issue time (microseconds, big-endian) and 32 random bytes."""
    stamp = (now - _EPOCH) // _MICROSECOND
    return stamp.to_bytes(_TIME_BYTES, "big") + secrets.token_bytes(_RANDOM_BYTES)


def issued_at(challenge: bytes, *, now: dt.datetime) -> dt.datetime:
    """When `challenge` was issued; ChallengeExpiredError when too old or not one of ours."""
    if len(challenge) != _TIME_BYTES + _RANDOM_BYTES:
        raise ChallengeExpiredError()
    try:
        moment = _EPOCH + int.from_bytes(challenge[:_TIME_BYTES], "big") * _MICROSECOND
    except OverflowError:
        raise ChallengeExpiredError() from None
    if not -CLOCK_SKEW <= now - moment <= CHALLENGE_MAX_AGE:
        raise ChallengeExpiredError()
    return moment
