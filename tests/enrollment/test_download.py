"""Downloads: the window of seed 004, concurrency, recording before sending, reissue."""

from __future__ import annotations

import datetime as dt
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from sqlalchemy import func, select

from pwa_server.enrollment.download import Platform
from pwa_server.enrollment.errors import (
    DownloadThrottledError,
    DownloadWindowClosedError,
    EnrollmentLockedError,
    EnrollmentNotFoundError,
    TooManyAttemptsAtOnceError,
    WrongSecretError,
)
from pwa_server.enrollment.installation import CheckStatus, check_installation
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.store.certificates import insert_certificate
from pwa_server.store.tables import certificates, enrollments
from tests.enrollment.conftest import START, Enrolling


def _download(
    enrolling: Enrolling,
    cuid: str,
    password: str,
    now: dt.datetime,
    platform: Platform = Platform.ANDROID,
) -> bytes:
    return enrolling.downloads.download(
        certificate_user_id=cuid, download_password=password, platform=platform, now=now
    ).content


def _issued(enrolling: Enrolling) -> int:
    with enrolling.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(certificates)).scalar_one())


def test_android_download_is_a_pkcs12_opened_by_the_download_password(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    content = _download(enrolling, invitation.certificate_user_id, password, START)
    key, certificate, chain = pkcs12.load_key_and_certificates(content, password.encode())
    assert key is not None
    assert certificate is not None
    cn = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == invitation.certificate_user_id
    assert chain == [enrolling.downloads.issuing.certificate]


def test_certificate_is_recorded_with_its_enrollment(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    content = _download(enrolling, invitation.certificate_user_id, password, START)
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    assert certificate is not None
    with enrolling.engine.connect() as connection:
        row = connection.execute(select(certificates)).one()
    assert row.serial == format(certificate.serial_number, "x")
    assert row.enrollment_id == invitation.enrollment_id


def test_validity_runs_two_years_from_the_issuance_notice_not_the_download(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download(now=START)
    later = START + dt.timedelta(days=2)
    content = _download(enrolling, invitation.certificate_user_id, password, later)
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    assert certificate is not None
    assert certificate.not_valid_after_utc == START + dt.timedelta(days=730)


def test_ios_download_is_a_signed_configuration_profile(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    delivery = enrolling.downloads.download(
        certificate_user_id=invitation.certificate_user_id,
        download_password=password,
        platform=Platform.IOS,
        now=START,
    )
    assert delivery.media_type == "application/x-apple-aspen-config"
    assert delivery.filename == f"{invitation.certificate_user_id}.mobileconfig"
    assert delivery.content[:1] == b"\x30"  # DER SignedData


def test_the_allowed_download_is_one_and_the_second_finds_the_window_closed(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    _download(enrolling, invitation.certificate_user_id, password, START)
    with pytest.raises(DownloadWindowClosedError):
        _download(enrolling, invitation.certificate_user_id, password, START)
    assert _issued(enrolling) == 1


def test_window_closes_30_days_after_the_invitation(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    with pytest.raises(DownloadWindowClosedError):
        _download(
            enrolling, invitation.certificate_user_id, password, START + dt.timedelta(days=30)
        )
    assert _issued(enrolling) == 0


def test_window_closes_3_days_after_the_first_download(
    enrolling: Enrolling, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrolling.downloads.policy = enrolling.policy = type(enrolling.policy)(
        **{**enrolling.policy.__dict__, "downloads_allowed": 5}
    )
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    _download(enrolling, cuid, password, START)
    _download(enrolling, cuid, password, START + dt.timedelta(days=2, hours=23))
    with pytest.raises(DownloadWindowClosedError):
        _download(enrolling, cuid, password, START + dt.timedelta(days=3))
    assert _issued(enrolling) == 2


def test_six_wrong_download_passwords_do_not_lock_and_the_right_one_works_after_the_wait(
    enrolling: Enrolling,
) -> None:
    # Issue 17, finding 5: it was 6 in a row locking the enrollment until an officer came.
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    now = START
    for _ in range(6):
        with pytest.raises(WrongSecretError):
            _download(enrolling, cuid, "wrong-password", now)
        now += dt.timedelta(hours=1)  # past any wait: each guess is counted
    with pytest.raises(DownloadThrottledError) as throttled:
        _download(enrolling, cuid, password, now - dt.timedelta(hours=1))
    assert throttled.value.retry_after >= 1

    _download(enrolling, cuid, password, now)

    with enrolling.engine.connect() as connection:
        row = connection.execute(select(enrollments)).one()
    assert (row.status, row.failed_attempts, _issued(enrolling)) == ("downloaded", 0, 1)


def test_download_password_is_accepted_as_typed_with_spaces_and_capitals(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    typed = " ".join(password[i : i + 4] for i in range(0, len(password), 4)).upper()
    _download(enrolling, invitation.certificate_user_id.upper(), typed, START)
    assert _issued(enrolling) == 1


def test_unknown_certificate_user_id_is_not_found(enrolling: Enrolling) -> None:
    with pytest.raises(EnrollmentNotFoundError):
        _download(enrolling, "shm-nosuchid", "whatever", START)


def test_twenty_concurrent_downloads_give_exactly_the_allowed_number(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()

    def attempt(_: int) -> str:
        try:
            _download(enrolling, invitation.certificate_user_id, password, START)
        except DownloadWindowClosedError:
            return "closed"
        except TooManyAttemptsAtOnceError:
            return "busy"
        return "ok"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))

    assert outcomes.count("ok") == enrolling.policy.downloads_allowed
    assert outcomes.count("ok") + outcomes.count("closed") + outcomes.count("busy") == 20
    assert _issued(enrolling) == enrolling.policy.downloads_allowed
    with enrolling.engine.connect() as connection:
        row = connection.execute(select(enrollments.c.downloads, enrollments.c.status)).one()
    assert row.downloads == enrolling.policy.downloads_allowed
    assert row.status == "downloaded"  # the right password, sent many times, never locks


def test_reissue_with_the_secret_answer_gives_a_new_window_and_supersedes_the_old(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    first = _download(enrolling, cuid, password, START)
    _, old, _ = pkcs12.load_key_and_certificates(first, password.encode())
    later = START + dt.timedelta(days=10)

    reissued = enrolling.service.reissue_with_secret_answer(cuid, "  POCHI ", now=later)

    assert reissued.download_password != password
    with pytest.raises(WrongSecretError):
        _download(enrolling, cuid, password, later)
    second = _download(enrolling, cuid, reissued.download_password, later)
    _, new, _ = pkcs12.load_key_and_certificates(second, reissued.download_password.encode())
    issuing = enrolling.downloads.issuing
    assert old is not None
    assert new is not None
    assert (
        check_installation(enrolling.engine, [issuing], old, now=later).status
        is CheckStatus.REVOKED
    )
    assert check_installation(enrolling.engine, [issuing], new, now=later).status is CheckStatus.OK


def test_reissue_keeps_the_old_certificate_until_the_new_one_is_downloaded(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    _, old, _ = pkcs12.load_key_and_certificates(
        _download(enrolling, cuid, password, START), password.encode()
    )
    enrolling.service.reissue_with_secret_answer(cuid, "pochi", now=START)
    assert old is not None
    issuing = enrolling.downloads.issuing
    assert check_installation(enrolling.engine, [issuing], old, now=START).status is CheckStatus.OK


def test_wrong_secret_answers_count_toward_the_lockout(enrolling: Enrolling) -> None:
    invitation, _ = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    for _ in range(enrolling.policy.max_failures - 1):
        with pytest.raises(WrongSecretError):
            enrolling.service.reissue_with_secret_answer(cuid, "Tama", now=START)
    with pytest.raises(EnrollmentLockedError):
        enrolling.service.reissue_with_secret_answer(cuid, "Tama", now=START)
    with pytest.raises(EnrollmentLockedError):
        enrolling.service.reissue_with_secret_answer(cuid, "Pochi", now=START)


def test_installation_check_marks_the_enrollment_installed_once(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    content = _download(enrolling, invitation.certificate_user_id, password, START)
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    issuing = enrolling.downloads.issuing
    first = START + dt.timedelta(hours=1)
    assert (
        check_installation(enrolling.engine, [issuing], certificate, now=first).status
        is CheckStatus.OK
    )
    check_installation(enrolling.engine, [issuing], certificate, now=first + dt.timedelta(days=1))
    with enrolling.engine.connect() as connection:
        row = connection.execute(select(enrollments.c.status, enrollments.c.installed_at)).one()
    assert row.status == "installed"
    assert row.installed_at == first


def _recorded_without_enrollment(
    enrolling: Enrolling, profile: CertificateProfile
) -> x509.Certificate:
    """A certificate our issuing CA signed and recorded for no enrollment (as it does the
    listeners' TLS certificate)."""
    issuing = enrolling.downloads.issuing
    certificate = enrolling.signed_by_issuing("localhost", profile, dt.timedelta(days=30))
    der = certificate.public_bytes(Encoding.DER)
    with enrolling.engine.begin() as connection:
        insert_certificate(
            connection,
            issuer_id=issuing.id,
            serial=format(certificate.serial_number, "x"),
            profile=profile.value,
            subject=certificate.subject.rfc4514_string(),
            not_before=START,
            not_after=START + dt.timedelta(days=30),
            certificate_der=der,
            sha256_fingerprint=hashlib.sha256(der).hexdigest(),
            created_at=START,
        )
    return certificate


@pytest.mark.parametrize("profile", [CertificateProfile.TLS_SERVER, CertificateProfile.CLIENT])
def test_installation_check_accepts_only_client_certificates_issued_for_an_enrollment(
    enrolling: Enrolling, profile: CertificateProfile
) -> None:
    certificate = _recorded_without_enrollment(enrolling, profile)
    verdict = check_installation(
        enrolling.engine, [enrolling.downloads.issuing], certificate, now=START
    )
    assert verdict.status is CheckStatus.UNKNOWN


def test_installation_check_says_missing_unknown_and_expired(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    content = _download(enrolling, invitation.certificate_user_id, password, START)
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    issuing = enrolling.downloads.issuing
    root = enrolling.downloads.root.certificate
    assert certificate is not None
    assert (
        check_installation(enrolling.engine, [issuing], None, now=START).status
        is CheckStatus.MISSING
    )
    assert (
        check_installation(enrolling.engine, [issuing], root, now=START).status
        is CheckStatus.UNKNOWN
    )
    expired = certificate.not_valid_after_utc
    assert (
        check_installation(enrolling.engine, [issuing], certificate, now=expired).status
        is CheckStatus.EXPIRED
    )
