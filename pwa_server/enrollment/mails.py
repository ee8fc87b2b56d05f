"""The enrollment's mails, in Japanese and English in one message (Japanese first).

A mail is read before the recipient chose a language on our pages, so it carries both.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from email.message import EmailMessage

from pwa_server.i18n import LOCALES, Templates, translations
from pwa_server.notify.mail import compose

_SEPARATOR = "\n" + "-" * 40 + "\n\n"


@dataclass(frozen=True)
class MailSender:
    """Who mails come from and where links point."""

    sender: str
    public_url: str
    message_id_domain: str


def _bilingual(templates: Templates, template: str, **context: object) -> str:
    return _SEPARATOR.join(templates.render(template, locale, **context) for locale in LOCALES)


def _subject(english: str) -> str:
    return " / ".join(translations(locale).gettext(english) for locale in LOCALES)


class EnrollmentMails:
    """Composes the invitation and the certificate download guide, addressed to the person
    by name when the enrollment has one, dates in the operator's time zone."""

    def __init__(self, sender: MailSender, *, zone: zoneinfo.ZoneInfo) -> None:
        self.sender = sender
        self._templates = Templates(zone=zone)

    def _compose(self, to: str, subject: str, template: str, **context: object) -> EmailMessage:
        """A mail whose subject (an English msgid) and body come in both languages."""
        return compose(
            sender=self.sender.sender,
            to=to,
            subject=_subject(subject),
            text=_bilingual(self._templates, template, **context),
            message_id_domain=self.sender.message_id_domain,
        )

    def invitation(
        self,
        *,
        to: str,
        display_name: str | None,
        enrollment_url: str,
        expires_at: dt.datetime,
    ) -> EmailMessage:
        """The enrollment URL only: the one-time password travels by another channel."""
        return self._compose(
            to,
            "Certificate enrollment",
            "mail/invitation.txt",
            display_name=display_name,
            enrollment_url=enrollment_url,
            expires_at=expires_at,
        )

    def download_guide(
        self,
        *,
        to: str,
        display_name: str | None,
        certificate_user_id: str,
        deadline: dt.datetime,
    ) -> EmailMessage:
        """Seed 003's 'certificate download guide': user ID and URL, never the password."""
        return self._compose(
            to,
            "Certificate download guide",
            "mail/download_guide.txt",
            display_name=display_name,
            certificate_user_id=certificate_user_id,
            download_url=f"{self.sender.public_url}/download",
            deadline=deadline,
        )
