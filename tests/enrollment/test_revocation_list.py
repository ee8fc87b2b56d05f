"""The issuing CA's CRL: signed in the token, numbered upward, renewed after each revocation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID

from pwa_server.enrollment.download import Platform
from pwa_server.pki.crl import CRL_LIFETIME, current_crl
from pwa_server.store.database import create_database_engine
from tests.conftest import openssl
from tests.enrollment.conftest import START, Enrolling


def _crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def _certificate(
    enrolling: Enrolling, cuid: str, password: str, now: dt.datetime
) -> x509.Certificate:
    content = enrolling.downloads.download(
        certificate_user_id=cuid, download_password=password, platform=Platform.ANDROID, now=now
    ).content
    _, certificate, _ = pkcs12.load_key_and_certificates(content, password.encode())
    assert certificate is not None
    return certificate


def _superseded(enrolling: Enrolling) -> tuple[x509.Certificate, x509.Certificate]:
    """(old, new): a certificate, then its reissue, which revokes the old one."""
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    old = _certificate(enrolling, cuid, password, START)
    reissued = enrolling.service.reissue_with_secret_answer(cuid, "pochi", now=START)
    new = _certificate(enrolling, cuid, reissued.download_password, START + dt.timedelta(hours=1))
    return old, new


def test_first_crl_is_number_1_empty_and_verifies_with_openssl(
    enrolling: Enrolling, tmp_path: Path
) -> None:
    issuing = enrolling.downloads.issuing
    der = current_crl(enrolling.engine, issuing, now=START)
    crl = x509.load_der_x509_crl(der)
    assert _crl_number(der) == 1
    assert len(crl) == 0
    assert crl.next_update_utc == START + CRL_LIFETIME
    (tmp_path / "crl.der").write_bytes(der)
    (tmp_path / "issuing.pem").write_bytes(issuing.certificate.public_bytes(Encoding.PEM))
    checked = openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        tmp_path / "crl.der",
        "-CAfile",
        tmp_path / "issuing.pem",
        "-noout",
        "-verify",
    )
    assert checked.returncode == 0, checked.stderr
    assert "verify OK" in checked.stderr + checked.stdout


def test_crl_is_reused_while_fresh(enrolling: Enrolling) -> None:
    issuing = enrolling.downloads.issuing
    first = current_crl(enrolling.engine, issuing, now=START)
    assert current_crl(enrolling.engine, issuing, now=START + dt.timedelta(days=5)) == first


def test_crl_is_signed_anew_a_day_before_next_update(enrolling: Enrolling) -> None:
    issuing = enrolling.downloads.issuing
    first = current_crl(enrolling.engine, issuing, now=START)
    later = START + CRL_LIFETIME - dt.timedelta(hours=23)
    assert _crl_number(current_crl(enrolling.engine, issuing, now=later)) == _crl_number(first) + 1


def test_superseded_certificate_is_listed_with_its_reason_in_a_new_crl(
    enrolling: Enrolling,
) -> None:
    issuing = enrolling.downloads.issuing
    before = current_crl(enrolling.engine, issuing, now=START)
    old, new = _superseded(enrolling)
    after = current_crl(enrolling.engine, issuing, now=START + dt.timedelta(hours=2))
    crl = x509.load_der_x509_crl(after)
    assert _crl_number(after) > _crl_number(before)
    entry = crl.get_revoked_certificate_by_serial_number(old.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.superseded
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None


def test_openssl_refuses_the_revoked_certificate_with_the_crl_and_accepts_the_new_one(
    enrolling: Enrolling, tmp_path: Path
) -> None:
    old, new = _superseded(enrolling)
    der = current_crl(
        enrolling.engine, enrolling.downloads.issuing, now=START + dt.timedelta(hours=2)
    )
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        enrolling.downloads.root.certificate.public_bytes(Encoding.PEM)
        + enrolling.downloads.issuing.certificate.public_bytes(Encoding.PEM)
    )
    crl_pem = tmp_path / "crl.pem"
    crl_pem.write_bytes(x509.load_der_x509_crl(der).public_bytes(Encoding.PEM))
    results = {}
    for name, certificate in (("old", old), ("new", new)):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(certificate.public_bytes(Encoding.PEM))
        # -no_check_time: the certificates were issued at the test's START, not today.
        results[name] = openssl(
            "verify", "-no_check_time", "-crl_check", "-CAfile", chain, "-CRLfile", crl_pem, path
        )
    assert results["old"].returncode != 0
    assert "certificate revoked" in results["old"].stdout + results["old"].stderr
    assert results["new"].returncode == 0, results["new"].stdout + results["new"].stderr


def test_crl_numbers_keep_growing_for_another_process_on_the_same_database(
    enrolling: Enrolling,
) -> None:
    issuing = enrolling.downloads.issuing
    first = _crl_number(current_crl(enrolling.engine, issuing, now=START))
    url = enrolling.engine.url.render_as_string(hide_password=False)
    other = create_database_engine(url)
    try:
        later = START + CRL_LIFETIME
        assert _crl_number(current_crl(other, issuing, now=later)) == first + 1
    finally:
        other.dispose()


def test_issued_certificates_name_the_crl_and_the_issuer_over_plain_http(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    crl_url = points[0].full_name[0].value
    by_method = {item.access_method: item.access_location.value for item in access}
    assert crl_url.startswith("http://")
    issuer_id = enrolling.downloads.issuing.id
    # URLs of this issuing CA's own: they keep answering for it after a key ceremony.
    assert crl_url.endswith(f"/pki/ca/{issuer_id}.crl")
    assert by_method[AuthorityInformationAccessOID.CA_ISSUERS].endswith(f"/pki/ca/{issuer_id}.crt")
    assert by_method[AuthorityInformationAccessOID.OCSP].endswith("/pki/ocsp")
