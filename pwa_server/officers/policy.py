"""The officer console's time limits, enforced by the web layer (and the challenges by us)."""

from __future__ import annotations

import datetime as dt

# A console left alone this long signs the officer out.
IDLE_TIMEOUT = dt.timedelta(minutes=10)
# A console session ends this long after sign-in, however busy it is.
SESSION_LIFETIME = dt.timedelta(hours=8)
# A session's "last seen" is written at most this often (so idling may end it this much
# sooner than IDLE_TIMEOUT after the last request).
LAST_SEEN_INTERVAL = dt.timedelta(minutes=1)
# A sensitive action needs an assertion made no longer ago than this (step-up).
STEP_UP_MAX_AGE = dt.timedelta(minutes=2)
# An invitation link (bootstrap or invite) works once, within this time.
INVITATION_VALIDITY = dt.timedelta(hours=1)
# A WebAuthn challenge is answered within this time, or the ceremony starts again.
CHALLENGE_MAX_AGE = dt.timedelta(minutes=5)
# What the browser is told to wait for the authenticator (below CHALLENGE_MAX_AGE).
CEREMONY_TIMEOUT = dt.timedelta(minutes=3)
# Challenges made by another instance whose clock runs ahead are still accepted.
CLOCK_SKEW = dt.timedelta(seconds=30)


def idle_expired(last_activity: dt.datetime, *, now: dt.datetime) -> bool:
    """True when a console session unused since `last_activity` must sign in again."""
    return now - last_activity >= IDLE_TIMEOUT


def step_up_fresh(stepped_up_at: dt.datetime | None, *, now: dt.datetime) -> bool:
    """True when a fresh assertion at `stepped_up_at` still allows a sensitive action."""
    if stepped_up_at is None:
        return False
    return -CLOCK_SKEW <= now - stepped_up_at < STEP_UP_MAX_AGE
