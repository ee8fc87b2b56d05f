"""Logs keep paths, never the secrets or personal identifiers some paths carry.

An enrollment id is the secret of an enrollment link, an invitation token opens the console
for an hour, a user id names a person: anyone who reads the log must not learn them. One
filter on the worker's log handlers redacts them in every record, whichever listener or
logger wrote it (uvicorn's access log, our own error lines).
"""

from __future__ import annotations

import logging
import re

REDACTED = "…"

# Each pattern's first group is kept; what follows it up to the next "/", "?" or space is not.
_SECRET_SEGMENTS = [
    re.compile(rf"({prefix})[^/\s\"?]+")
    for prefix in (
        "/enroll/",
        "/officer/register/",
        "/officer/enrollments/",
        "/api/v1/enrollments/",
    )
]
# A user id may itself hold "/" (the API's route takes it as a path).
_USER_ID = re.compile(r"(/api/v1/users/)\S+?(/certificates)")
# Query parameters that carry a person's name or id (the console's searches and filters).
_PERSONAL_QUERY = re.compile(
    r"([?&](?:q|subject|actor|user_id|certificate_user_id|email|token)=)[^&\s\"]*"
)


def redact(text: str) -> str:
    """`text` with secret path segments and personal query values replaced by REDACTED."""
    for pattern in _SECRET_SEGMENTS:
        text = pattern.sub(rf"\1{REDACTED}", text)
    text = _USER_ID.sub(rf"\1{REDACTED}\2", text)
    return _PERSONAL_QUERY.sub(rf"\1{REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """Redacts the string arguments of every record (the message templates hold no path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def redact_handlers(logger: logging.Logger) -> None:
    """Put the filter on every handler of `logger` (the root's, after basicConfig), so that
    records of all loggers are redacted before any handler writes them."""
    for handler in logger.handlers:
        handler.addFilter(RedactSecretsFilter())
