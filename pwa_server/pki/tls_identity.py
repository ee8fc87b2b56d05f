"""The listeners' TLS identity: a server certificate from the issuing CA and its key file.

uvicorn (Python's ssl) can only use a private key from a file, so this key is a software key
kept with 0600 permissions; it is not a CA key and signs nothing but TLS handshakes.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from pwa_server.pki.authority import Authority
from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile, PublicationUrls, subject_alternative_names

TLS_LIFETIME = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Where the listeners find their TLS material."""

    directory: Path

    @property
    def certificate_chain(self) -> Path:
        return self.directory / "server.pem"

    @property
    def private_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_ca_bundle(self) -> Path:
        """The CAs whose client certificates the check listener asks for."""
        return self.directory / "client-ca.pem"


def ensure_tls_identity(
    engine: Engine,
    files: TlsFiles,
    *,
    root: Authority,
    issuing: Authority,
    hostnames: list[str],
    now: dt.datetime,
    urls: PublicationUrls | None = None,
) -> bool:
    """Issue a new server certificate unless the current one fits; True if one was issued."""
    pem = serialization.Encoding.PEM
    write_client_ca_bundle(files, [root.certificate, issuing.certificate])
    if _current_fits(files, issuing, hostnames, now):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    with engine.begin() as connection:
        certificate, _ = issue(
            connection,
            issuing,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]),
            public_key=key.public_key(),
            profile=CertificateProfile.TLS_SERVER,
            now=now,
            lifetime=TLS_LIFETIME,
            alt_names=hostnames,
            urls=urls,
        )
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(files.private_key, key_pem, 0o600)
    _write(
        files.certificate_chain,
        certificate.public_bytes(pem) + issuing.certificate.public_bytes(pem),
        0o644,
    )
    return True


def write_client_ca_bundle(files: TlsFiles, authorities: list[x509.Certificate]) -> None:
    """Name these CAs in the check listener's certificate request (rewritten only when it
    changes): browsers offer a client certificate only from a CA the server names, so after
    a key ceremony the new issuing CA and the retired ones must all be there."""
    bundle = b"".join(
        certificate.public_bytes(serialization.Encoding.PEM) for certificate in authorities
    )
    if not files.client_ca_bundle.exists() or files.client_ca_bundle.read_bytes() != bundle:
        _write(files.client_ca_bundle, bundle, 0o644)


def _current_fits(
    files: TlsFiles, issuing: Authority, hostnames: list[str], now: dt.datetime
) -> bool:
    if not files.certificate_chain.exists() or not files.private_key.exists():
        return False
    leaf = x509.load_pem_x509_certificates(files.certificate_chain.read_bytes())[0]
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return (
        leaf.issuer == issuing.certificate.subject
        and names == subject_alternative_names(hostnames)
        and leaf.not_valid_after_utc - now > RENEW_BEFORE
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` atomically, created with `mode` from the start (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A name of its own: several worker processes may write the same file at once.
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
