"""Token signatures per second against certificates per second through the CA layer.

Run with `make bench` (never part of `make test`). Both figures come from the same run on the
same token, so their ratio says what the CA layer (profile, X.509 building, database) costs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import NameOID

from hsm import KeyAlgorithm, TokenECPrivateKey, TokenRSAPrivateKey
from pwa_server.initialise import initialise
from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.runtime import open_services
from pwa_server.settings import Settings

SECONDS = 3.0


def rate(operation: Callable[[], object], seconds: float = SECONDS) -> float:
    """Operations per second, over at least `seconds`."""
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        operation()
        count += 1
    return count / elapsed


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(data_dir=Path(directory))
        initialise(settings, dt.datetime.now(dt.UTC))
        services = open_services(settings)
        token = services.token
        message = b"x" * 64
        figures: dict[str, float] = {}

        issuing_key = services.issuing.private_key
        assert isinstance(issuing_key, TokenECPrivateKey)
        figures["token_p256_signatures_per_s"] = rate(
            lambda: issuing_key.sign(message, ec.ECDSA(hashes.SHA256()))
        )
        rsa_key = token.private_key(token.generate_key(KeyAlgorithm.RSA_3072, "bench-rsa"))
        assert isinstance(rsa_key, TokenRSAPrivateKey)
        try:
            figures["token_rsa3072_signatures_per_s"] = rate(
                lambda: rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
            )
        finally:
            token.destroy_key(rsa_key.ref)

        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
        public_key = ec.generate_private_key(ec.SECP256R1()).public_key()

        def issue_one() -> None:
            with services.engine.begin() as connection:
                issue(
                    connection,
                    services.issuing,
                    subject=subject,
                    public_key=public_key,
                    profile=CertificateProfile.CLIENT,
                    now=dt.datetime.now(dt.UTC),
                    lifetime=dt.timedelta(days=730),
                )

        figures["ca_p256_certificates_per_s"] = rate(issue_one)
        figures["ca_to_token_ratio"] = (
            figures["ca_p256_certificates_per_s"] / figures["token_p256_signatures_per_s"]
        )
        services.close()

    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:{width}}  {value:10.2f}")
    results = Path("bench/results")
    results.mkdir(parents=True, exist_ok=True)
    (results / "signing.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
