"""Notifications through a transactional outbox: mails (SMTP or .eml files), with retries.

Domain code composes a mail with `compose` and calls `enqueue_mail` in its own transaction;
the web worker runs `run_sender` in the background with `transport_from_settings`.
"""

from pwa_server.notify.eml import MailSummary, list_mails
from pwa_server.notify.mail import compose, sender_domain
from pwa_server.notify.outbox import (
    MAX_ATTEMPTS,
    OutboxMessage,
    claim_due,
    enqueue_mail,
    mark_delivered,
    mark_failed_attempt,
)
from pwa_server.notify.sender import deliver_due, run_sender
from pwa_server.notify.transports import (
    DeliveryError,
    EmlDirectoryTransport,
    MailTransport,
    SmtpTransport,
    transport_from_settings,
)

__all__ = [
    "MAX_ATTEMPTS",
    "DeliveryError",
    "EmlDirectoryTransport",
    "MailSummary",
    "MailTransport",
    "OutboxMessage",
    "SmtpTransport",
    "claim_due",
    "compose",
    "deliver_due",
    "enqueue_mail",
    "list_mails",
    "mark_delivered",
    "mark_failed_attempt",
    "run_sender",
    "sender_domain",
    "transport_from_settings",
]
