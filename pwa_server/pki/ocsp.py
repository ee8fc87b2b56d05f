"""The OCSP responder (RFC 6960) for the issuing CA: good, revoked or unknown, signed by a
delegated responder whose key is in the token. Responses without a nonce are signed once per
status and reused until the status changes or the response nears its nextUpdate; the very same
request asked again within STATUS_RECHECK is answered from memory without reading the status
(`OcspResponders.recent`), which is what lets a worker answer thousands a second. Both
memories are bounded in entries and bytes, and neither keeps an answer about a serial the CA
never issued: anyone can ask about any number of those."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from sqlalchemy import Engine

from pwa_server.pki.authority import Authority
from pwa_server.pki.response_memory import ResponseMemory
from pwa_server.store.certificates import certificate_row
from pwa_server.vocabulary import CertificateStatus

MEDIA_TYPE = "application/ocsp-response"
REQUEST_MEDIA_TYPE = "application/ocsp-request"
RESPONSE_LIFETIME = dt.timedelta(hours=12)
REUSE_UNTIL_BEFORE_NEXT_UPDATE = dt.timedelta(hours=6)
# How long a worker may repeat an answer without reading the certificate's status again: a
# revocation shows in every worker's answers (every instance's, whoever revoked) within it.
# Clients reuse a response until its nextUpdate (12 h) anyway; one second costs nothing in
# freshness and saves a database read per request under load.
STATUS_RECHECK = dt.timedelta(seconds=1)
# Distinct requests remembered per worker (request and response, ~3 KB); the oldest go first.
RECENT_LIMIT = 4096
RECENT_BYTES = 8 * 1024 * 1024
# Signed responses kept per issuing CA for reuse (~3 KB each: they carry two certificates).
SIGNED_LIMIT = 16384
SIGNED_BYTES = 48 * 1024 * 1024
# SHA-1 CertIDs are what most clients send (RFC 5019); here SHA-1 only identifies, never signs.
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303
    "sha256": hashes.SHA256(),
}
_REASONS = {flag.value: flag for flag in x509.ReasonFlags}


@dataclass(frozen=True)
class RecentResponse:
    """The response given to a request, and when its status was read."""

    checked_at: dt.datetime
    response: bytes


@dataclass(frozen=True)
class Answer:
    """A signed response, and whether it may be repeated to the same request."""

    response: bytes
    repeatable: bool


@dataclass(frozen=True)
class _Status:
    status: ocsp.OCSPCertStatus
    revoked_at: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None


def _issuer_hashes(issuing: Authority, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of the CertID for the issuing CA (RFC 6960 4.1.1)."""
    name = hashes.Hash(algorithm)
    name.update(issuing.certificate.subject.public_bytes())
    key = hashes.Hash(algorithm)
    # The hash covers the subjectPublicKey BIT STRING's value: the encoded point for EC, the
    # DER RSAPublicKey for RSA.
    public_key = issuing.certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        key.update(
            public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        )
    else:
        key.update(
            public_key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
    return name.finalize(), key.finalize()


class OcspResponder:
    """Answers OCSP requests about certificates of one issuing CA."""

    def __init__(self, engine: Engine, issuing: Authority, responder: Authority) -> None:
        self.engine = engine
        self.issuing = issuing
        self.responder = responder
        self.signed: ResponseMemory[tuple[int, str, _Status], tuple[dt.datetime, bytes]] = (
            ResponseMemory(max_entries=SIGNED_LIMIT, max_bytes=SIGNED_BYTES)
        )

    def serves(self, request: ocsp.OCSPRequest, algorithm: hashes.HashAlgorithm) -> bool:
        """Whether the request asks about a certificate of this responder's issuing CA."""
        issuer = (request.issuer_name_hash, request.issuer_key_hash)
        return issuer == _issuer_hashes(self.issuing, algorithm)

    def answer(
        self, request: ocsp.OCSPRequest, algorithm: hashes.HashAlgorithm, *, now: dt.datetime
    ) -> Answer:
        """The signed response to a request this responder serves."""
        status = self._status(request.serial_number)
        nonce = _nonce(request)
        if nonce is not None:
            return Answer(self._sign(request, algorithm, status, now, nonce), repeatable=False)
        if status.status is ocsp.OCSPCertStatus.UNKNOWN:
            return Answer(self._sign(request, algorithm, status, now, None), repeatable=False)
        key = (request.serial_number, algorithm.name, status)
        cached = self.signed.get(key)
        if cached is not None and cached[0] - now > REUSE_UNTIL_BEFORE_NEXT_UPDATE:
            return Answer(cached[1], repeatable=True)
        response = self._sign(request, algorithm, status, now, None)
        self.signed.put(key, (now + RESPONSE_LIFETIME, response), len(response))
        return Answer(response, repeatable=True)

    def _status(self, serial_number: int) -> _Status:
        with self.engine.connect() as connection:
            row = certificate_row(connection, self.issuing.id, format(serial_number, "x"))
        if row is None:
            return _Status(ocsp.OCSPCertStatus.UNKNOWN)
        if row.status == CertificateStatus.REVOKED and row.revoked_at is not None:
            return _Status(
                ocsp.OCSPCertStatus.REVOKED,
                row.revoked_at,
                _REASONS.get(row.revocation_reason or "", x509.ReasonFlags.unspecified),
            )
        return _Status(ocsp.OCSPCertStatus.GOOD)

    def _sign(
        self,
        request: ocsp.OCSPRequest,
        algorithm: hashes.HashAlgorithm,
        status: _Status,
        now: dt.datetime,
        nonce: x509.OCSPNonce | None,
    ) -> bytes:
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=algorithm,
                cert_status=status.status,
                this_update=now,
                next_update=now + RESPONSE_LIFETIME,
                revocation_time=status.revoked_at,
                revocation_reason=status.reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.responder.certificate)
            # The responder's chain up to the issuing CA, so clients that trust only the root
            # can verify the delegated responder.
            .certificates([self.responder.certificate, self.issuing.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(nonce, critical=False)
        response = builder.sign(self.responder.private_key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


class OcspResponders:
    """One OCSP URL for every issuing CA still in use: after a key ceremony the retired CA's
    certificates stay valid until they expire, and their status must still be answered, by
    the responder that CA certified."""

    def __init__(
        self,
        responders: list[OcspResponder],
        *,
        recent: ResponseMemory[bytes, RecentResponse] | None = None,
    ) -> None:
        if not responders:
            raise ValueError("at least the active issuing CA's responder is needed")
        self.responders = responders
        self._recent = (
            ResponseMemory(max_entries=RECENT_LIMIT, max_bytes=RECENT_BYTES)
            if recent is None
            else recent
        )

    @property
    def responder(self) -> Authority:
        """The responder of the issuing CA in use (the first)."""
        return self.responders[0].responder

    def respond(self, request_der: bytes, *, now: dt.datetime) -> bytes:
        """The DER response to a DER request; malformed or foreign requests get an error status."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = _HASHES[request.hash_algorithm.name]
        except (ValueError, KeyError, NotImplementedError):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        for responder in self.responders:
            if responder.serves(request, algorithm):
                answer = responder.answer(request, algorithm, now=now)
                if answer.repeatable:
                    self._recent.put(
                        request_der,
                        RecentResponse(now, answer.response),
                        len(request_der) + len(answer.response),
                    )
                return answer.response
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)

    def remembered(self) -> tuple[int, int]:
        """Responses held in memory, and their bytes: the recent ones and the signed ones."""
        memories: list[ResponseMemory[Any, Any]] = [
            self._recent,
            *(responder.signed for responder in self.responders),
        ]
        return sum(len(memory) for memory in memories), sum(memory.bytes for memory in memories)

    def recent(self, request_der: bytes, *, now: dt.datetime) -> bytes | None:
        """The response `respond` gave to this very request (without nonce) less than
        STATUS_RECHECK ago, else None. Cheap enough for the event loop: no parsing, no
        database, no token."""
        entry = self._recent.get(request_der)
        if entry is None or not entry.checked_at <= now < entry.checked_at + STATUS_RECHECK:
            return None
        return entry.response


def _nonce(request: ocsp.OCSPRequest) -> x509.OCSPNonce | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value
    except x509.ExtensionNotFound:
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
