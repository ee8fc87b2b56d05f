"""The CA's certificate revocation list: signed in the token, shared through the database,
signed anew after every revocation and a day before nextUpdate.

The CRL's DER is written here by hand, not by cryptography's CertificateRevocationListBuilder,
because nothing at hand builds a CRL of a million entries fast enough (issue 6, item 4; target
1M entries in 10 s and 1.5 GiB; `bench/crl.py`, figures in bench/results/crl.json):

- the builder is immutable, so each add_revoked_certificate copies the entries so far: O(n^2),
  75 s for 100k entries, over 10 minutes for 1M;
- the builder given every entry at once through its constructor is O(n), but making each
  RevokedCertificate (four immutable builder steps and a Rust object) costs ~8 us: 1M entries
  miss the target on their own, before the database is read;
- asn1crypto (installed with python-pkcs11) builds a tree of Python objects per entry and is
  slower still.

Only the structures of RFC 5280, section 5.1 that our CRLs use are written, and each output is
checked by openssl and cryptography in tests/pki/test_crl_encoding.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import Engine

from pwa_server.pki.authority import Authority
from pwa_server.store.certificates import RevokedRow, stream_revoked_entries
from pwa_server.store.crls import claim_crl_number, current_crl_row, store_crl

CRL_LIFETIME = dt.timedelta(days=7)
REFRESH_BEFORE = dt.timedelta(days=1)
MEDIA_TYPE = "application/pkix-crl"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def sign_crl(
    authority: Authority, entries: Iterable[RevokedRow], *, number: int, now: dt.datetime
) -> x509.CertificateRevocationList:
    """A CRL of `entries`, numbered `number`, valid for CRL_LIFETIME, signed in the token."""
    return x509.load_der_x509_crl(
        crl_der(authority.certificate, authority.private_key, entries, number=number, now=now)
    )


def current_crl(engine: Engine, authority: Authority, *, now: dt.datetime) -> bytes:
    """The CRL in DER: the stored one while it is fresh, otherwise a new one.

    A new one is built outside any write transaction: at a million entries the build takes
    seconds, during which SQLite would lock out every other writer, revocations included. Its
    number is claimed and committed first and its entries read afterwards; store_crl keeps it
    only if no revocation was committed meanwhile and no newer CRL was kept, so that a
    revocation never goes missing from the CRL served and a CRL never replaces a newer one."""
    with engine.connect() as connection:
        stored = current_crl_row(connection, authority.id)
    if (
        stored is not None
        and stored.crl_der is not None
        and stored.next_update is not None
        and not stored.stale
        and stored.next_update - now > REFRESH_BEFORE
    ):
        return stored.crl_der
    with engine.begin() as connection:
        claim = claim_crl_number(connection, authority.id)
    with engine.connect() as connection:
        # The entries are encoded as they come from the database, never all held as objects.
        der = crl_der(
            authority.certificate,
            authority.private_key,
            stream_revoked_entries(connection, authority.id),
            number=claim.number,
            now=now,
        )
    with engine.begin() as connection:
        store_crl(
            connection,
            authority.id,
            claim,
            crl_der=der,
            this_update=now,
            next_update=now + CRL_LIFETIME,
        )
    return der


def crl_der(
    issuer: x509.Certificate,
    key: SigningKey,
    entries: Iterable[RevokedRow],
    *,
    number: int,
    now: dt.datetime,
) -> bytes:
    """The DER CertificateList (RFC 5280, 5.1) of `entries`, issued by the CA certificate
    `issuer` and signed with its `key` (ECDSA or PKCS#1 v1.5, with SHA-256)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = _ECDSA_WITH_SHA256
    elif isinstance(key, rsa.RSAPrivateKey):
        algorithm = _SHA256_WITH_RSA_ENCRYPTION
    else:
        raise TypeError(f"cannot sign a CRL with a {type(key).__name__}")
    # The issuer is the CA certificate's subject exactly as it is encoded there: relying
    # parties match CRL and certificate issuers by name, so the bytes are copied, not re-made.
    issuer_name = _subject_der(issuer)

    # revokedCertificates: one SEQUENCE per entry, appended to one buffer as the entries come,
    # so that a million entries cost their DER (~50 bytes each) and no objects.
    revoked = bytearray()
    for serial, revoked_at, reason in entries:
        revoked += _revoked_certificate(serial, revoked_at, reason)

    # keyIdentifier: the SHA-1 of the signing key's subjectPublicKey (RFC 5280, 4.2.1.2,
    # method 1), as AuthorityKeyIdentifier.from_issuer_public_key made it here before.
    key_identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    crl_extensions = _tlv(
        0xA0,  # [0] EXPLICIT
        _tlv(
            _SEQUENCE,
            _extension(_OID_CRL_NUMBER, _integer(number))
            # AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
            + _extension(
                _OID_AUTHORITY_KEY_IDENTIFIER, _tlv(_SEQUENCE, _tlv(0x80, key_identifier))
            ),
        ),
    )
    # An empty revokedCertificates is left out, as RFC 5280 requires ("MUST be absent").
    revoked_header = _header(_SEQUENCE, len(revoked)) if revoked else b""
    tbs_fields = (
        _VERSION_2,
        algorithm,
        issuer_name,
        _time(now),
        _time(now + CRL_LIFETIME),
    )
    tbs_length = (
        sum(map(len, tbs_fields)) + len(revoked_header) + len(revoked) + len(crl_extensions)
    )
    tbs = b"".join(
        (_header(_SEQUENCE, tbs_length), *tbs_fields, revoked_header, revoked, crl_extensions)
    )
    del revoked  # ~50 MB at 1M entries, now copied into tbs: not kept through the signing
    if isinstance(key, ec.EllipticCurvePrivateKey):
        # cryptography's ECDSA signature is already the DER Ecdsa-Sig-Value the CRL carries.
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    else:
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    # signatureValue BIT STRING: a leading octet of 0 unused bits, then the signature.
    signature_value = _tlv(0x03, b"\x00" + signature)
    return b"".join(
        (
            _header(_SEQUENCE, len(tbs) + len(algorithm) + len(signature_value)),
            tbs,
            algorithm,
            signature_value,
        )
    )


# --- DER (X.690) of exactly what the CRL needs -------------------------------------------

_SEQUENCE = 0x30
_INTEGER = 0x02
_OCTET_STRING = 0x04
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18

# version v2 (INTEGER 1): CRLs with extensions must be v2 (RFC 5280, 5.1.2.1).
_VERSION_2 = bytes.fromhex("020101")
# AlgorithmIdentifiers of RFC 5758, 3.2 (no parameters) and RFC 4055, 5 (NULL parameters);
# the same in TBSCertList.signature and CertificateList.signatureAlgorithm.
_ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_SHA256_WITH_RSA_ENCRYPTION = bytes.fromhex("300d06092a864886f70d01010b0500")
# OBJECT IDENTIFIERs id-ce-cRLNumber (2.5.29.20), id-ce-authorityKeyIdentifier (2.5.29.35),
# id-ce-cRLReasons (2.5.29.21).
_OID_CRL_NUMBER = bytes.fromhex("0603551d14")
_OID_AUTHORITY_KEY_IDENTIFIER = bytes.fromhex("0603551d23")
_OID_CRL_REASON = bytes.fromhex("0603551d15")

# CRLReason ::= ENUMERATED (RFC 5280, 5.3.1), by the names the database keeps (cryptography's
# ReasonFlags values). unspecified (0) is never written: RFC 5280 says to leave the extension
# out instead, as cryptography's builder did here before. Unknown names get no extension.
_REASON_CODES = {
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "certificateHold": 6,
    "removeFromCRL": 8,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}


def _header(tag: int, length: int) -> bytes:
    """Identifier and length octets: short form below 128, long form above."""
    if length < 0x80:
        return bytes((tag, length))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return _header(tag, len(content)) + content


def _integer(value: int) -> bytes:
    """A non-negative INTEGER in the fewest octets: one more than the value's bits need, when
    the top bit of the first octet would otherwise be set (it is the sign bit)."""
    if value < 0:
        raise ValueError("serial numbers and CRL numbers are not negative")
    return _tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _extension(oid: bytes, value: bytes) -> bytes:
    """Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }: none of
    ours is critical, and DER leaves a DEFAULT value out."""
    return _tlv(_SEQUENCE, oid + _tlv(_OCTET_STRING, value))


# crlEntryExtensions (Extensions ::= SEQUENCE OF Extension) holding one CRLReason, per name.
_ENTRY_EXTENSIONS = {
    name: _tlv(_SEQUENCE, _extension(_OID_CRL_REASON, bytes((0x0A, 1, code))))
    for name, code in _REASON_CODES.items()
}

_TWO_DIGITS = [b"%02d" % value for value in range(100)]


def _time(moment: dt.datetime) -> bytes:
    """Time (RFC 5280, 4.1.2.5): UTCTime YYMMDDHHMMSSZ up to 2049, GeneralizedTime
    YYYYMMDDHHMMSSZ from 2050 (and before 1950); whole seconds in UTC, as cryptography writes
    them (fractions are dropped). A naive datetime is taken as UTC, as cryptography does."""
    if moment.tzinfo is not dt.UTC and moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    two = _TWO_DIGITS
    rest = (
        two[moment.month]
        + two[moment.day]
        + two[moment.hour]
        + two[moment.minute]
        + two[moment.second]
        + b"Z"
    )
    year = moment.year
    if 1950 <= year < 2050:
        return b"\x17\x0d" + two[year % 100] + rest
    return b"\x18\x0f" + two[year // 100] + two[year % 100] + rest


def _revoked_certificate(serial: str, revoked_at: dt.datetime, reason: str | None) -> bytes:
    """SEQUENCE { userCertificate INTEGER, revocationDate Time, crlEntryExtensions OPTIONAL }.
    Runs once per entry, so it is kept to a few concatenations: the serial column holds at
    most 21 octets, so every length here is below 128 and has the short form."""
    value = int(serial, 16)
    number = value.to_bytes(value.bit_length() // 8 + 1, "big")
    content = (
        bytes((_INTEGER, len(number)))
        + number
        + _time(revoked_at)
        + _ENTRY_EXTENSIONS.get(reason or "", b"")
    )
    return bytes((_SEQUENCE, len(content))) + content


def _subject_der(certificate: x509.Certificate) -> bytes:
    """The subject Name of the certificate as encoded in it. TBSCertificate ::= SEQUENCE {
    version [0] EXPLICIT OPTIONAL, serialNumber, signature, issuer, validity, subject, ...}."""
    tbs = certificate.tbs_certificate_bytes
    _, position = _read_header(tbs, 0)  # into the TBSCertificate SEQUENCE
    skip = 4  # serialNumber, signature, issuer, validity
    if tbs[position] == 0xA0:
        skip += 1  # version, absent from v1 certificates
    for _ in range(skip):
        length, content = _read_header(tbs, position)
        position = content + length
    length, content = _read_header(tbs, position)
    if tbs[position] != _SEQUENCE:
        raise ValueError("the certificate's subject is not where RFC 5280 puts it")
    return tbs[position : content + length]


def _read_header(der: bytes, position: int) -> tuple[int, int]:
    """(content length, content offset) of the DER element at `position`."""
    first = der[position + 1]
    if first < 0x80:
        return first, position + 2
    count = first & 0x7F
    start = position + 2
    return int.from_bytes(der[start : start + count], "big"), start + count
