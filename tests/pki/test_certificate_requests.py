"""The issuance pipeline for a public key made elsewhere (a device's, as ACME and SCEP will
send): signed by the issuing CA, recorded and audited; a refused request leaves no trace."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select

from pwa_server import audit
from pwa_server.audit import Actor
from pwa_server.pki.issuance import BACKDATE, CertificateRequest, Issued, RefusedRequestError
from pwa_server.runtime import Services
from pwa_server.store.audit import read_head
from pwa_server.store.certificates import certificate_by_serial
from pwa_server.store.tables import certificates

DEVICE = Actor.user("device-enrollment")


def device_request(
    public_key: CertificatePublicKeyTypes,
    key_profile: str = "default",
    *,
    not_after: dt.datetime,
    certificate_user_id: str = "shm-device01",
) -> CertificateRequest:
    return CertificateRequest(
        certificate_user_id=certificate_user_id,
        public_key=public_key,
        key_profile=key_profile,
        not_after=not_after,
        requester=DEVICE,
        facts={"protocol": "test"},
    )


def issue_request(services: Services, request: CertificateRequest, now: dt.datetime) -> Issued:
    """The pipeline as an endpoint with nothing to package calls it: an empty block."""
    with (
        services.engine.begin() as connection,
        services.downloads.issuance.issue(connection, request, now=now) as issued,
    ):
        pass
    return issued


def traces(services: Services) -> tuple[int, int]:
    """How many certificates are recorded, and the audit log's last event id."""
    with services.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(certificates)).scalar_one()
        head = read_head(connection)
    assert head is not None
    return count, head.last_event_id


def moment() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class DeviceCertificate:
    """What the pipeline made of a device's P-256 key, and the traces from before."""

    device_key: ec.EllipticCurvePublicKey
    now: dt.datetime
    issued: Issued
    traces_before: tuple[int, int]


@pytest.fixture
def device_certificate(services: Services) -> DeviceCertificate:
    device_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    now = moment()
    request = device_request(device_key, not_after=now + dt.timedelta(days=30))
    before = traces(services)
    return DeviceCertificate(device_key, now, issue_request(services, request, now), before)


def test_a_devices_p256_key_gets_a_client_certificate_of_the_issuing_ca(
    services: Services, device_certificate: DeviceCertificate
) -> None:
    certificate, now = device_certificate.issued.certificate, device_certificate.now

    certificate.verify_directly_issued_by(services.issuing.certificate)
    assert certificate.public_key() == device_certificate.device_key
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "shm-device01"
    )
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.not_valid_before_utc == now - BACKDATE
    assert certificate.not_valid_after_utc == now + dt.timedelta(days=30)


def test_the_devices_certificate_is_recorded_and_audited_as_whoever_asked(
    services: Services, device_certificate: DeviceCertificate
) -> None:
    issued, before = device_certificate.issued, device_certificate.traces_before

    assert traces(services) == (before[0] + 1, before[1] + 1)
    with services.engine.connect() as connection:
        stored = certificate_by_serial(connection, services.issuing.id, issued.serial)
    assert stored == issued.certificate.public_bytes(Encoding.DER)
    [event] = audit.events(services.engine, limit=5, subject=issued.serial)
    assert (event.action, event.actor_kind, event.actor, event.subject_kind) == (
        "certificate.issued",
        "user",
        "device-enrollment",
        "certificate",
    )
    assert event.details is not None
    assert json.loads(event.details) == {
        "serial": issued.serial,
        "profile": "default",
        "issuer_id": services.issuing.id,
        "enrollment_id": None,
        "certificate_user_id": "shm-device01",
        "not_after": issued.certificate.not_valid_after_utc.isoformat(),
        "protocol": "test",
    }


def test_a_devices_rsa_key_of_its_key_profile_is_accepted(services: Services) -> None:
    device_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = moment()
    request = device_request(
        device_key.public_key(), "rsa-2048", not_after=now + dt.timedelta(days=1)
    )

    certificate = issue_request(services, request, now).certificate

    certificate.verify_directly_issued_by(services.issuing.certificate)
    assert certificate.public_key() == device_key.public_key()


def test_the_expiry_asked_for_is_capped_at_the_issuing_cas(services: Services) -> None:
    now = moment()
    request = device_request(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        not_after=services.issuing.certificate.not_valid_after_utc + dt.timedelta(days=1),
    )

    certificate = issue_request(services, request, now).certificate

    assert certificate.not_valid_after_utc == services.issuing.certificate.not_valid_after_utc


REFUSED: dict[str, tuple[CertificatePublicKeyTypes, str]] = {
    "an Ed25519 key": (ed25519.Ed25519PrivateKey.generate().public_key(), "default"),
    "an EC key of another curve": (ec.generate_private_key(ec.SECP384R1()).public_key(), "default"),
    "too small an RSA key": (
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(),  # noqa: S505
        "rsa-2048",
    ),
    "an EC key for an RSA key profile": (
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        "rsa-3072",
    ),
    "an unknown key profile": (ec.generate_private_key(ec.SECP256R1()).public_key(), "ec-p384"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_request_stores_nothing_and_audits_nothing(services: Services, case: str) -> None:
    public_key, key_profile = REFUSED[case]
    now = moment()
    request = device_request(public_key, key_profile, not_after=now + dt.timedelta(days=30))
    before = traces(services)

    with pytest.raises(RefusedRequestError):
        issue_request(services, request, now)

    assert traces(services) == before


@pytest.mark.parametrize(
    ("certificate_user_id", "days"),
    [("", 30), ("x" * 65, 30), ("shm-device01", 0)],
    ids=["no certificate user ID", "a certificate user ID too long", "expired at once"],
)
def test_a_request_without_a_name_or_a_future_expiry_is_refused(
    services: Services, certificate_user_id: str, days: int
) -> None:
    now = moment()
    request = device_request(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        not_after=now + dt.timedelta(days=days),
        certificate_user_id=certificate_user_id,
    )
    before = traces(services)

    with pytest.raises(RefusedRequestError):
        issue_request(services, request, now)

    assert traces(services) == before


def test_a_failure_inside_the_callers_block_leaves_no_certificate_and_no_event(
    services: Services,
) -> None:
    now = moment()
    request = device_request(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        not_after=now + dt.timedelta(days=30),
    )
    before = traces(services)

    with (
        pytest.raises(RuntimeError),
        services.engine.begin() as connection,
        services.downloads.issuance.issue(connection, request, now=now),
    ):
        raise RuntimeError("the packaging failed")

    assert traces(services) == before
