"""The OCSP responder: good, revoked and unknown, as openssl reads them."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from pwa_server.pki.ocsp import STATUS_RECHECK, OcspResponders, RecentResponse
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.pki.response_memory import ResponseMemory
from tests.conftest import openssl
from tests.enrollment.conftest import START, Enrolling
from tests.enrollment.test_revocation_list import _certificate, _superseded

# Responses are judged now: openssl checks thisUpdate/nextUpdate against its own clock.
LATER = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _request(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    algorithm: hashes.HashAlgorithm,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def _issuer_name_hash(issuer: x509.Certificate) -> bytes:
    return hashlib.sha1(issuer.subject.public_bytes()).digest()  # noqa: S324


def _issuer_key_hash(issuer: x509.Certificate) -> bytes:
    # RFC 6960's issuerKeyHash is SubjectKeyIdentifier's method 1: SHA-1 of the key's bits.
    return x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest


def _openssl_status(
    enrolling: Enrolling,
    certificate: x509.Certificate,
    response: bytes,
    tmp_path: Path,
    *options: str,
) -> str:
    """What `openssl ocsp -respin` says of the certificate, after verifying the response."""
    downloads = enrolling.downloads
    (tmp_path / "resp.der").write_bytes(response)
    (tmp_path / "leaf.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    (tmp_path / "issuing.pem").write_bytes(downloads.issuing.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "root.pem").write_bytes(downloads.root.certificate.public_bytes(Encoding.PEM))
    result = openssl(
        "ocsp",
        "-respin",
        tmp_path / "resp.der",
        "-issuer",
        tmp_path / "issuing.pem",
        "-CAfile",
        tmp_path / "root.pem",
        "-no_nonce",
        *options,  # the CertID digest must come before -cert
        "-cert",
        tmp_path / "leaf.pem",
    )
    assert "Response verify OK" in result.stderr, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("algorithm", "option"),
    [(hashes.SHA1(), "-sha1"), (hashes.SHA256(), "-sha256")],  # noqa: S303
)
def test_a_valid_certificate_is_good_for_sha1_and_sha256_cert_ids(
    enrolling: Enrolling, tmp_path: Path, algorithm: hashes.HashAlgorithm, option: str
) -> None:
    invitation, password = enrolling.ready_to_download()
    certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
    request = _request(certificate, enrolling.downloads.issuing.certificate, algorithm)
    response = enrolling.ocsp.respond(request, now=LATER)
    assert "leaf.pem: good" in _openssl_status(enrolling, certificate, response, tmp_path, option)


def test_a_superseded_certificate_is_revoked_with_its_reason(
    enrolling: Enrolling, tmp_path: Path
) -> None:
    old, _ = _superseded(enrolling)
    request = _request(old, enrolling.downloads.issuing.certificate, hashes.SHA256())
    response = enrolling.ocsp.respond(request, now=LATER)
    said = _openssl_status(enrolling, old, response, tmp_path, "-sha256")
    assert "leaf.pem: revoked" in said
    assert "superseded" in said.lower()


def test_a_certificate_the_ca_never_recorded_is_unknown(
    enrolling: Enrolling, tmp_path: Path
) -> None:
    issuing = enrolling.downloads.issuing
    unrecorded = enrolling.signed_by_issuing(
        "never-recorded", CertificateProfile.CLIENT, dt.timedelta(days=1)
    )
    response = enrolling.ocsp.respond(
        _request(unrecorded, issuing.certificate, hashes.SHA256()), now=LATER
    )
    assert "leaf.pem: unknown" in _openssl_status(
        enrolling, unrecorded, response, tmp_path, "-sha256"
    )


def test_the_nonce_is_echoed(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
    nonce = b"0123456789abcdef"
    request = _request(certificate, enrolling.downloads.issuing.certificate, hashes.SHA256(), nonce)
    response = ocsp.load_der_ocsp_response(enrolling.ocsp.respond(request, now=LATER))
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def test_responses_are_reused_until_the_status_changes(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    certificate = _certificate(enrolling, cuid, password, START)
    request = _request(certificate, enrolling.downloads.issuing.certificate, hashes.SHA256())
    first = enrolling.ocsp.respond(request, now=LATER)
    assert enrolling.ocsp.respond(request, now=LATER + dt.timedelta(minutes=5)) == first
    reissued = enrolling.service.reissue_with_secret_answer(cuid, "pochi", now=LATER)
    _certificate(enrolling, cuid, reissued.download_password, LATER)
    after = ocsp.load_der_ocsp_response(enrolling.ocsp.respond(request, now=LATER))
    assert after.certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_responses_are_signed_by_the_delegated_responder_in_the_token(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
    request = _request(certificate, enrolling.downloads.issuing.certificate, hashes.SHA256())
    response = ocsp.load_der_ocsp_response(enrolling.ocsp.respond(request, now=LATER))
    responder = enrolling.ocsp.responder.certificate
    assert response.certificates == [responder, enrolling.downloads.issuing.certificate]
    usage = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in usage
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)


def test_a_request_about_another_issuer_is_unauthorized(enrolling: Enrolling) -> None:
    root = enrolling.downloads.root.certificate
    issuing = enrolling.downloads.issuing.certificate
    request = _request(issuing, root, hashes.SHA256())  # the issuing CA, asked of the root
    response = ocsp.load_der_ocsp_response(enrolling.ocsp.respond(request, now=LATER))
    assert response.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_garbage_is_a_malformed_request(enrolling: Enrolling) -> None:
    response = ocsp.load_der_ocsp_response(enrolling.ocsp.respond(b"\x30\x03junk", now=LATER))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_the_same_request_is_answered_from_memory_within_the_status_recheck(
    enrolling: Enrolling,
) -> None:
    invitation, password = enrolling.ready_to_download()
    certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
    request = _request(certificate, enrolling.downloads.issuing.certificate, hashes.SHA1())  # noqa: S303
    assert enrolling.ocsp.recent(request, now=LATER) is None
    response = enrolling.ocsp.respond(request, now=LATER)
    almost = LATER + STATUS_RECHECK - dt.timedelta(milliseconds=1)
    assert enrolling.ocsp.recent(request, now=almost) == response


def test_a_remembered_answer_expires_after_the_status_recheck(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
    request = _request(certificate, enrolling.downloads.issuing.certificate, hashes.SHA256())
    enrolling.ocsp.respond(request, now=LATER)
    assert enrolling.ocsp.recent(request, now=LATER + STATUS_RECHECK) is None


def test_a_revocation_shows_once_the_status_recheck_has_passed(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    cuid = invitation.certificate_user_id
    certificate = _certificate(enrolling, cuid, password, START)
    request = _request(certificate, enrolling.downloads.issuing.certificate, hashes.SHA256())
    enrolling.ocsp.respond(request, now=LATER)
    reissued = enrolling.service.reissue_with_secret_answer(cuid, "pochi", now=LATER)
    _certificate(enrolling, cuid, reissued.download_password, LATER)
    later = LATER + STATUS_RECHECK
    assert enrolling.ocsp.recent(request, now=later) is None
    after = ocsp.load_der_ocsp_response(enrolling.ocsp.respond(request, now=later))
    assert after.certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_a_request_with_a_nonce_is_never_answered_from_memory(enrolling: Enrolling) -> None:
    invitation, password = enrolling.ready_to_download()
    certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
    issuer = enrolling.downloads.issuing.certificate
    request = _request(certificate, issuer, hashes.SHA256(), b"0123456789abcdef")
    enrolling.ocsp.respond(request, now=LATER)
    assert enrolling.ocsp.recent(request, now=LATER) is None


def test_memory_forgets_the_request_refreshed_longest_ago(enrolling: Enrolling) -> None:
    responders = OcspResponders(
        enrolling.ocsp.responders, recent=ResponseMemory(max_entries=2, max_bytes=1 << 20)
    )
    issuer = enrolling.downloads.issuing.certificate
    requests = []
    for _ in range(2):
        invitation, password = enrolling.ready_to_download()
        certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
        requests.append(_request(certificate, issuer, hashes.SHA256()))
    first, second = requests
    third = _request(certificate, issuer, hashes.SHA1())  # noqa: S303
    for request in (first, second, first, third):
        responders.respond(request, now=LATER)
    assert responders.recent(second, now=LATER) is None
    assert responders.recent(first, now=LATER) is not None
    assert responders.recent(third, now=LATER) is not None


def test_answers_about_serials_the_ca_never_issued_are_not_remembered(
    enrolling: Enrolling,
) -> None:
    issuer = enrolling.downloads.issuing.certificate
    before = enrolling.ocsp.remembered()
    for _ in range(50):
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(
                _issuer_name_hash(issuer),
                _issuer_key_hash(issuer),
                x509.random_serial_number(),
                hashes.SHA1(),  # noqa: S303
            )
            .build()
            .public_bytes(Encoding.DER)
        )
        answer = ocsp.load_der_ocsp_response(enrolling.ocsp.respond(request, now=LATER))
        assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
        assert enrolling.ocsp.recent(request, now=LATER) is None
    assert enrolling.ocsp.remembered() == before


def test_memory_of_responses_is_bounded_in_bytes(enrolling: Enrolling) -> None:
    issuer = enrolling.downloads.issuing.certificate
    requests = []
    for _ in range(5):
        invitation, password = enrolling.ready_to_download()
        certificate = _certificate(enrolling, invitation.certificate_user_id, password, START)
        requests.append(_request(certificate, issuer, hashes.SHA256()))
    one: ResponseMemory[bytes, RecentResponse] = ResponseMemory(max_entries=10, max_bytes=1 << 20)
    OcspResponders(enrolling.ocsp.responders, recent=one).respond(requests[0], now=LATER)
    memory: ResponseMemory[bytes, RecentResponse] = ResponseMemory(
        max_entries=1000, max_bytes=3 * one.bytes + 10
    )
    responders = OcspResponders(enrolling.ocsp.responders, recent=memory)
    for request in requests:
        responders.respond(request, now=LATER)
    assert len(memory) == 3
    assert memory.bytes <= memory.max_bytes
