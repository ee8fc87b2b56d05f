"""The CRL's DER, written by hand in pwa_server.pki.crl, against checkers nobody here wrote:
openssl (`crl -verify`, `crl -text`) and cryptography (its parser, and its own builder, which
wrote our CRLs before and must give the same TBSCertList for the same input)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from hsm import KeyAlgorithm
from pwa_server.pki.crl import CRL_LIFETIME, SigningKey, crl_der, current_crl, sign_crl
from pwa_server.pki.hierarchy import record_authority
from pwa_server.runtime import Services
from pwa_server.store.certificates import (
    RevokedEntry,
    revoke_certificate,
    revoked_entries,
    stream_revoked_entries,
)
from pwa_server.store.database import create_database_engine, migrate
from pwa_server.vocabulary import AuthorityRole
from tests.conftest import ca_public_key, openssl
from tests.store.test_repositories import add_certificate

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
JST = dt.timezone(dt.timedelta(hours=9))

# Every reason the database may hold, in cryptography's spelling, with openssl's wording.
OPENSSL_REASONS = {
    "keyCompromise": "Key Compromise",
    "cACompromise": "CA Compromise",
    "affiliationChanged": "Affiliation Changed",
    "superseded": "Superseded",
    "cessationOfOperation": "Cessation Of Operation",
    "certificateHold": "Certificate Hold",
    "removeFromCRL": "Remove From CRL",
    "privilegeWithdrawn": "Privilege Withdrawn",
    "aACompromise": "AA Compromise",
}
# Reasons that give no CRLReason extension: unspecified (RFC 5280: leave it out), none kept,
# and a name no version of ours wrote (ignored, as cryptography's builder path did).
NO_EXTENSION = ("unspecified", None, "notAReason")


def every_reason() -> list[RevokedEntry]:
    """One entry per reason, each a different day and serial."""
    reasons: list[str | None] = [*OPENSSL_REASONS, *NO_EXTENSION]
    return [
        RevokedEntry(format(0x1000 + index, "x"), NOW - dt.timedelta(days=index + 1), reason)
        for index, reason in enumerate(reasons)
    ]


@dataclasses.dataclass(frozen=True)
class Signer:
    """A CA certificate, its key (in the token or not) and the certificate's PEM file."""

    certificate: x509.Certificate
    key: SigningKey
    pem: Path


def self_signed_ca(key: SigningKey, common_name: str) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shomei テスト"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def write_pem(directory: Path, certificate: x509.Certificate) -> Path:
    path = directory / f"ca-{secrets.token_hex(4)}.pem"
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return path


@pytest.fixture(scope="module", params=["issuing-p256", "root-p384", "token-rsa", "software-rsa"])
def signer(
    request: pytest.FixtureRequest, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Signer]:
    """The session's CAs (EC keys in the token), an RSA-3072 key made in the token for a
    self-signed CA, and a software RSA key through the same code path."""
    directory = tmp_path_factory.mktemp("signer")
    kind = request.param
    if kind in ("issuing-p256", "root-p384"):
        authority = services.issuing if kind == "issuing-p256" else services.root
        yield Signer(
            authority.certificate,
            authority.private_key,
            write_pem(directory, authority.certificate),
        )
    elif kind == "token-rsa":
        token = services.token
        ref = token.generate_key(KeyAlgorithm.RSA_3072, f"test-crl-rsa-{secrets.token_hex(4)}")
        try:
            key = token.private_key(ref)
            certificate = self_signed_ca(key, "Token RSA CA")
            yield Signer(certificate, key, write_pem(directory, certificate))
        finally:
            token.destroy_key(ref)
    else:
        software = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certificate = self_signed_ca(software, "Software RSA CA")
        yield Signer(certificate, software, write_pem(directory, certificate))


def save(tmp_path: Path, der: bytes) -> Path:
    path = tmp_path / "crl.der"
    path.write_bytes(der)
    return path


def openssl_verifies(crl: Path, ca_pem: Path) -> None:
    checked = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", ca_pem, "-noout", "-verify")
    assert checked.returncode == 0, checked.stderr
    assert "verify OK" in checked.stderr + checked.stdout


def openssl_text(crl: Path) -> str:
    shown = openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-text")
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def colon_hex(data: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in data)


def by_builder(
    issuer: x509.Certificate,
    key: SigningKey,
    entries: Sequence[RevokedEntry],
    *,
    number: int,
    now: dt.datetime,
) -> x509.CertificateRevocationList:
    """The CRL as cryptography's builder makes it (sign_crl before issue 6)."""
    flags = {flag.value: flag for flag in x509.ReasonFlags}
    revoked = []
    for entry in entries:
        builder = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(entry.serial, 16))
            .revocation_date(entry.revoked_at)
        )
        reason = flags.get(entry.reason or "")
        if reason is not None and reason is not x509.ReasonFlags.unspecified:
            builder = builder.add_extension(x509.CRLReason(reason), critical=False)
        revoked.append(builder.build())
    return (
        x509.CertificateRevocationListBuilder(
            issuer_name=issuer.subject,
            last_update=now,
            next_update=now + CRL_LIFETIME,
            revoked_certificates=revoked,
        )
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def fields(crl: x509.CertificateRevocationList) -> dict[str, object]:
    """What a CRL says, signature aside."""
    return {
        "version": crl.tbs_certlist_bytes[4:7],
        "algorithm": crl.signature_algorithm_oid,
        "issuer": crl.issuer,
        "last_update": crl.last_update_utc,
        "next_update": crl.next_update_utc,
        "extensions": list(crl.extensions),
        "entries": [
            (entry.serial_number, entry.revocation_date_utc, list(entry.extensions))
            for entry in crl
        ],
    }


def test_crl_with_every_reason_verifies_with_openssl_and_cryptography(
    signer: Signer, tmp_path: Path
) -> None:
    der = crl_der(signer.certificate, signer.key, every_reason(), number=7, now=NOW)
    openssl_verifies(save(tmp_path, der), signer.pem)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(ca_public_key(signer.certificate))
    expected = (
        SignatureAlgorithmOID.ECDSA_WITH_SHA256
        if isinstance(signer.key, ec.EllipticCurvePrivateKey)
        else SignatureAlgorithmOID.RSA_WITH_SHA256
    )
    assert crl.signature_algorithm_oid == expected
    assert crl.issuer == signer.certificate.subject
    assert len(crl) == len(every_reason())


def test_crl_is_the_tbs_that_cryptographys_builder_makes(signer: Signer) -> None:
    entries = [
        *every_reason(),
        # Aware in another zone, naive (taken as UTC), with microseconds (dropped).
        RevokedEntry("7f" + "ff" * 19, dt.datetime(2026, 2, 1, 9, 30, tzinfo=JST), "superseded"),
        RevokedEntry("80", dt.datetime(2026, 2, 2, 8, 15, 30), "keyCompromise"),
        RevokedEntry("ff00", NOW.replace(microsecond=999_999), None),
        RevokedEntry("1", dt.datetime(2050, 6, 1, tzinfo=dt.UTC), "superseded"),
    ]
    ours = sign_crl_for(signer, entries, number=2**70, now=NOW.replace(microsecond=123))
    theirs = by_builder(
        signer.certificate, signer.key, entries, number=2**70, now=NOW.replace(microsecond=123)
    )
    assert ours.tbs_certlist_bytes == theirs.tbs_certlist_bytes
    assert fields(ours) == fields(theirs)


def sign_crl_for(
    signer: Signer, entries: Sequence[RevokedEntry], *, number: int, now: dt.datetime
) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(
        crl_der(signer.certificate, signer.key, entries, number=number, now=now)
    )


def test_a_long_crl_has_long_form_lengths_and_is_still_the_builders(services: Services) -> None:
    """Thousands of entries: lengths of three octets, and the same bytes as the builder's."""
    issuing = services.issuing
    entries = [
        RevokedEntry(
            format(x509.random_serial_number(), "x"),
            NOW - dt.timedelta(minutes=index),
            [*OPENSSL_REASONS, None][index % 10],
        )
        for index in range(3000)
    ]
    der = crl_der(issuing.certificate, issuing.private_key, entries, number=9, now=NOW)
    ours = x509.load_der_x509_crl(der)
    theirs = by_builder(issuing.certificate, issuing.private_key, entries, number=9, now=NOW)
    assert der[:2] == b"\x30\x83"  # SEQUENCE, length in three octets
    assert ours.tbs_certlist_bytes == theirs.tbs_certlist_bytes
    assert ours.is_signature_valid(ca_public_key(issuing.certificate))
    assert [entry.serial_number for entry in ours] == [int(entry.serial, 16) for entry in entries]


def test_openssl_lists_the_serials_reasons_crl_number_and_authority_key_identifier(
    services: Services, ca_files: dict[str, Path], tmp_path: Path
) -> None:
    issuing = services.issuing
    entries = every_reason()
    der = crl_der(issuing.certificate, issuing.private_key, entries, number=4242, now=NOW)
    path = save(tmp_path, der)
    openssl_verifies(path, ca_files["issuing"])
    text = openssl_text(path)
    assert "Version 2 (0x1)" in text
    assert "X509v3 CRL Number: \n                4242" in text
    key_identifier = x509.SubjectKeyIdentifier.from_public_key(
        issuing.certificate.public_key()
    ).digest
    assert f"X509v3 Authority Key Identifier: \n                {colon_hex(key_identifier)}" in text
    # The same key identifier as the CA certificate's own: how relying parties pair them.
    ski = issuing.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ski.value.digest == key_identifier
    blocks = text.split("Serial Number: ")[1:]
    assert len(blocks) == len(entries)
    for entry, block in zip(entries, blocks, strict=True):
        assert block.startswith(f"{int(entry.serial, 16):04X}\n")
        assert entry.revoked_at.strftime("Revocation Date: %b %e %H:%M:%S %Y GMT") in block
        shown = [reason for reason in OPENSSL_REASONS.values() if reason in block]
        assert shown == ([OPENSSL_REASONS[entry.reason]] if entry.reason in OPENSSL_REASONS else [])


def test_every_reason_reads_back_and_the_others_have_no_reason_extension(
    services: Services,
) -> None:
    issuing = services.issuing
    crl = sign_crl(issuing, every_reason(), number=1, now=NOW)
    flags = {flag.value: flag for flag in x509.ReasonFlags}
    for entry in every_reason():
        revoked = crl.get_revoked_certificate_by_serial_number(int(entry.serial, 16))
        assert revoked is not None
        assert revoked.revocation_date_utc == entry.revoked_at
        if entry.reason in OPENSSL_REASONS:
            reason = revoked.extensions.get_extension_for_class(x509.CRLReason)
            assert not reason.critical
            assert reason.value.reason is flags[entry.reason]
        else:
            assert list(revoked.extensions) == []


def test_an_empty_crl_has_no_revoked_certificates_field(
    signer: Signer, services: Services, tmp_path: Path
) -> None:
    der = crl_der(signer.certificate, signer.key, [], number=1, now=NOW)
    openssl_verifies(save(tmp_path, der), signer.pem)
    crl = x509.load_der_x509_crl(der)
    assert len(crl) == 0
    assert crl.is_signature_valid(ca_public_key(signer.certificate))
    theirs = by_builder(signer.certificate, signer.key, [], number=1, now=NOW)
    # RFC 5280 5.1.2.6: with no entries, revokedCertificates is absent, not an empty SEQUENCE.
    assert crl.tbs_certlist_bytes == theirs.tbs_certlist_bytes
    assert "No Revoked Certificates." in openssl_text(save(tmp_path, der))


def test_times_are_utctime_before_2050_and_generalizedtime_from_2050(
    services: Services, ca_files: dict[str, Path], tmp_path: Path
) -> None:
    issuing = services.issuing
    last_utc = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    first_generalized = dt.datetime(2050, 1, 1, tzinfo=dt.UTC)
    entries = [
        RevokedEntry("a1", last_utc, "superseded"),
        RevokedEntry("a2", first_generalized, "superseded"),
    ]
    # thisUpdate in 2049, nextUpdate (seven days later) in 2050.
    now = dt.datetime(2049, 12, 30, 6, 0, tzinfo=dt.UTC)
    der = crl_der(issuing.certificate, issuing.private_key, entries, number=1, now=now)
    assert b"\x17\x0d491230060000Z" in der  # thisUpdate, UTCTime
    assert b"\x18\x0f20500106060000Z" in der  # nextUpdate, GeneralizedTime
    assert b"\x17\x0d491231235959Z" in der
    assert b"\x18\x0f20500101000000Z" in der
    crl = x509.load_der_x509_crl(der)
    assert crl.last_update_utc == now
    assert crl.next_update_utc == now + CRL_LIFETIME
    assert [entry.revocation_date_utc for entry in crl] == [last_utc, first_generalized]
    path = save(tmp_path, der)
    openssl_verifies(path, ca_files["issuing"])
    text = openssl_text(path)
    assert "Revocation Date: Dec 31 23:59:59 2049 GMT" in text
    assert "Revocation Date: Jan  1 00:00:00 2050 GMT" in text
    assert "Next Update: Jan  6 06:00:00 2050 GMT" in text

    later = crl_der(issuing.certificate, issuing.private_key, [], number=2, now=first_generalized)
    assert b"\x18\x0f20500101000000Z" in later
    assert x509.load_der_x509_crl(later).last_update_utc == first_generalized


@pytest.mark.parametrize(
    ("serial", "integer"),
    [
        ("1", "020101"),
        ("7f", "02017f"),
        ("80", "02020080"),  # high bit set: a leading 0x00 keeps it positive
        ("ff", "020200ff"),
        ("100", "02020100"),
        ("7f" + "ff" * 19, "0214" + "7f" + "ff" * 19),  # 20 octets, the most RFC 5280 allows
        ("80" + "00" * 18 + "01", "0215" + "0080" + "00" * 18 + "01"),  # 20 octets, high bit
        ("00000abc", "02020abc"),  # leading zeros in the stored hex are not encoded
    ],
)
def test_serial_numbers_are_minimal_positive_der_integers(
    serial: str, integer: str, services: Services, ca_files: dict[str, Path], tmp_path: Path
) -> None:
    issuing = services.issuing
    entry = RevokedEntry(serial, NOW, None)
    der = crl_der(issuing.certificate, issuing.private_key, [entry], number=1, now=NOW)
    # The entry: SEQUENCE { INTEGER, UTCTime }, nothing else.
    content = bytes.fromhex(integer) + b"\x17\x0d260301120000Z"
    assert bytes((0x30, len(content))) + content in der
    crl = x509.load_der_x509_crl(der)
    assert [revoked.serial_number for revoked in crl] == [int(serial, 16)]
    path = save(tmp_path, der)
    openssl_verifies(path, ca_files["issuing"])
    value = int(serial, 16)
    # openssl shows the magnitude in whole octets.
    octets = value.to_bytes((value.bit_length() + 7) // 8, "big")
    assert f"Serial Number: {octets.hex().upper()}\n" in openssl_text(path)


def test_sign_crl_returns_the_crl_for_the_authority(services: Services) -> None:
    issuing = services.issuing
    crl = sign_crl(issuing, iter(every_reason()), number=3, now=NOW)
    assert isinstance(crl, x509.CertificateRevocationList)
    assert crl.is_signature_valid(ca_public_key(issuing.certificate))
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == 3


def test_keys_other_than_ec_and_rsa_are_refused(services: Services) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(TypeError, match="Ed25519"):
        # An Ed25519 key is outside crl_der's types: the test is what happens at run time.
        crl_der(services.issuing.certificate, key, [], number=1, now=NOW)  # type: ignore[arg-type]


def as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def test_current_crl_lists_what_the_database_holds_read_as_a_stream(
    services: Services, database_url: str, tmp_path: Path, ca_files: dict[str, Path]
) -> None:
    """current_crl streams the rows into the encoder: same entries, same order (by id), as the
    list revoked_entries gives; valid certificates and other CAs' are left out."""
    engine = create_database_engine(database_url)
    try:
        migrate(engine)
        with engine.begin() as connection:
            authority_id = record_authority(
                connection,
                name="issuing-for-crl",
                role=AuthorityRole.ISSUING,
                parent_id=None,
                ref=services.issuing.key_ref,
                certificate=services.issuing.certificate,
                now=NOW,
            )
        authority = dataclasses.replace(services.issuing, id=authority_id)
        reasons = [*OPENSSL_REASONS, "unspecified"]
        serials = [format(x509.random_serial_number(), "x") for _ in range(25)]
        with engine.begin() as connection:
            for serial in serials:
                add_certificate(connection, authority_id, serial)
            for index, serial in enumerate(serials[:20]):
                revoke_certificate(
                    connection,
                    authority_id,
                    serial,
                    reason=reasons[index % len(reasons)],
                    now=NOW + dt.timedelta(minutes=index, microseconds=index),
                )
        with engine.connect() as connection:
            listed = revoked_entries(connection, authority_id)
            streamed = [
                # Naive on SQLite, in UTC, as crl_der takes it.
                RevokedEntry(serial, as_utc(revoked_at), reason)
                for serial, revoked_at, reason in stream_revoked_entries(
                    connection, authority_id, batch=3
                )
            ]
        assert streamed == listed
        assert [entry.serial for entry in listed] == serials[:20]

        der = current_crl(engine, authority, now=NOW + dt.timedelta(hours=1))
        openssl_verifies(save(tmp_path, der), ca_files["issuing"])
        crl = x509.load_der_x509_crl(der)
        assert [entry.serial_number for entry in crl] == [int(s, 16) for s in serials[:20]]
        expected = by_builder(
            authority.certificate,
            authority.private_key,
            listed,
            number=1,
            now=NOW + dt.timedelta(hours=1),
        )
        assert crl.tbs_certlist_bytes == expected.tbs_certlist_bytes
    finally:
        engine.dispose()
