"""Renewal (seed 004) beside reissue, and mails sent again by an administrator."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select

from pwa_server.enrollment.download import Platform
from pwa_server.enrollment.errors import WrongStepError
from pwa_server.store.tables import certificates, enrollments, outbox_messages
from tests.enrollment.conftest import START, Enrolling

LATER = START + dt.timedelta(days=400)


def _download(enrolling: Enrolling, cuid: str, password: str, now: dt.datetime) -> int:
    """The serial of the certificate in the downloaded PKCS#12."""
    content = enrolling.downloads.download(
        certificate_user_id=cuid, download_password=password, platform=Platform.ANDROID, now=now
    ).content
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    assert certificate is not None
    return certificate.serial_number


def _statuses(enrolling: Enrolling) -> dict[int, str]:
    with enrolling.engine.connect() as connection:
        rows = connection.execute(select(certificates.c.serial, certificates.c.status)).all()
    return {int(row.serial, 16): row.status for row in rows}


def _subjects(enrolling: Enrolling) -> list[str]:
    with enrolling.engine.connect() as connection:
        return list(
            connection.execute(
                select(outbox_messages.c.subject).order_by(outbox_messages.c.id)
            ).scalars()
        )


def test_a_renewal_keeps_the_previous_certificate_valid(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    first = _download(enrolling, invitation.certificate_user_id, password, START)
    enrolling.administration.renew(invitation.enrollment_id, now=LATER)
    second = _download(enrolling, invitation.certificate_user_id, password, LATER)
    assert _statuses(enrolling) == {first: "valid", second: "valid"}


def test_a_reissue_after_a_renewal_revokes_the_previous_certificate_again(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    first = _download(enrolling, invitation.certificate_user_id, password, START)
    enrolling.administration.renew(invitation.enrollment_id, now=LATER)
    second = _download(enrolling, invitation.certificate_user_id, password, LATER)
    enrolling.administration.reissue(invitation.enrollment_id, now=LATER)
    third = _download(enrolling, invitation.certificate_user_id, password, LATER)
    assert _statuses(enrolling) == {first: "revoked", second: "revoked", third: "valid"}


def test_a_renewed_certificate_is_valid_two_years_from_the_renewal_notice(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    _download(enrolling, invitation.certificate_user_id, password, START)
    enrolling.administration.renew(invitation.enrollment_id, now=LATER)
    content = enrolling.downloads.download(
        certificate_user_id=invitation.certificate_user_id,
        download_password=password,
        platform=Platform.ANDROID,
        now=LATER + dt.timedelta(days=1),
    ).content
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    assert certificate is not None
    assert certificate.not_valid_after_utc == LATER + dt.timedelta(days=730)


def test_renewal_mails_the_download_guide(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    _download(enrolling, invitation.certificate_user_id, password, START)
    before = len(_subjects(enrolling))
    enrolling.administration.renew(invitation.enrollment_id, now=LATER)
    assert len(_subjects(enrolling)) == before + 1
    assert _subjects(enrolling)[-1] == _subjects(enrolling)[1]  # the download guide again


def test_an_unused_invitation_cannot_be_renewed(enrolling: Enrolling) -> None:
    invitation = enrolling.invite()
    with pytest.raises(WrongStepError):
        enrolling.administration.renew(invitation.enrollment_id, now=START)


def test_resending_before_the_secret_question_mails_the_invitation_again(
    enrolling: Enrolling,
) -> None:
    invitation = enrolling.invite()
    enrolling.administration.resend_mail(invitation.enrollment_id, now=START)
    first, again = _subjects(enrolling)
    assert again == first
    with enrolling.engine.connect() as connection:
        bodies: list[str] = list(connection.execute(select(outbox_messages.c.body)).scalars())
    assert invitation.one_time_password not in bodies[1]


def test_resending_after_the_secret_question_mails_the_download_guide_again(
    enrolling: Enrolling,
) -> None:
    enrolling.ready_to_download()
    [enrollment_id] = _enrollment_ids(enrolling)
    enrolling.administration.resend_mail(enrollment_id, now=START)
    invitation_mail, guide, again = _subjects(enrolling)
    assert again == guide != invitation_mail


def _enrollment_ids(enrolling: Enrolling) -> list[str]:
    with enrolling.engine.connect() as connection:
        return list(connection.execute(select(enrollments.c.id)).scalars())
