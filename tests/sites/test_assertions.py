"""Return assertions: ES256 JWTs signed by a key in the token, verifiable by a site from the
published JWKS alone (with PyJWT, and by hand with cryptography), and redeemable once."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm
from sqlalchemy import Engine, func, select

from hsm import KeyAlgorithm, KeyRef
from pwa_server.pki.authority import Authority, load_authority
from pwa_server.pki.hierarchy import ensure_assertion_signer, record_authority
from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import RETURN_ASSERTION_SIGNING, CertificateProfile
from pwa_server.runtime import Services
from pwa_server.settings import Settings
from pwa_server.sites.assertions import CLOCK_SKEW, AssertionSigner, load_assertion_signer
from pwa_server.sites.errors import (
    ReturnAssertionExpiredError,
    ReturnAssertionInvalidError,
    ReturnAssertionReplayedError,
)
from pwa_server.store.database import create_database_engine, migrate
from pwa_server.store.sites import SiteRow, update_site
from pwa_server.store.tables import certificate_authorities, redeemed_assertions
from pwa_server.vocabulary import AuthorityRole
from tests.conftest import openssl, run_tool
from tests.hsm.test_ca_keys_in_token import listed_objects, pkcs11_tool

SITE = "shop"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def signer_authority(services: Services) -> Authority:
    return load_authority(services.engine, services.token, AuthorityRole.ASSERTION)


@pytest.fixture(scope="module")
def client_certificate(services: Services) -> x509.Certificate:
    """A client certificate of the session's issuing CA, for an assertion to be about."""
    key = ec.generate_private_key(ec.SECP256R1())
    with services.engine.begin() as connection:
        certificate, _ = issue(
            connection,
            services.issuing,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shm-assert01")]),
            public_key=key.public_key(),
            profile=CertificateProfile.CLIENT,
            now=now(),
            lifetime=dt.timedelta(days=30),
        )
    return certificate


def sign(
    services: Services, certificate: x509.Certificate, at: dt.datetime, site: str = SITE
) -> str:
    return services.assertions.sign(
        site_name=site,
        user_id="user-42",
        certificate=certificate,
        certificate_user_id="shm-assert01",
        now=at,
    )


def jwk_for(services: Services, token: str) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    keys: list[dict[str, Any]] = services.assertions.jwks()["keys"]
    [jwk] = [key for key in keys if key["kid"] == kid]
    return jwk


# --- the key and its certificate ----------------------------------------------------------


def test_the_signer_is_a_p256_key_certified_by_the_issuing_ca_for_assertions_only(
    services: Services, signer_authority: Authority
) -> None:
    certificate = signer_authority.certificate
    certificate.verify_directly_issued_by(services.issuing.certificate)
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert isinstance(public_key.curve, ec.SECP256R1)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    assert not usage.value.key_agreement
    extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(extended) == [RETURN_ASSERTION_SIGNING]


def test_openssl_refuses_the_signer_certificate_for_tls_client_authentication(
    services: Services, signer_authority: Authority, ca_files: dict[str, Path], tmp_path: Path
) -> None:
    signer = tmp_path / "signer.pem"
    signer.write_bytes(signer_authority.certificate.public_bytes(Encoding.PEM))
    chain = ("-CAfile", ca_files["root"], "-untrusted", ca_files["issuing"])

    chains = openssl("verify", *chain, signer)
    as_client = openssl("verify", *chain, "-purpose", "sslclient", signer)

    assert chains.returncode == 0, chains.stdout + chains.stderr
    assert as_client.returncode != 0
    assert "unsuitable certificate purpose" in as_client.stdout + as_client.stderr


def test_pkcs11_tool_lists_the_signing_key_as_sensitive_and_never_extractable(
    initialised: Settings, softhsm_env: dict[str, str], signer_authority: Authority
) -> None:
    result = run_tool(*pkcs11_tool(initialised, "-O"), env=softhsm_env)
    assert result.returncode == 0, result.stderr

    [entry] = [
        entry
        for entry in listed_objects(result.stdout)
        if entry["object"].startswith("Private Key Object")
        and entry.get("label") == signer_authority.key_ref.label
    ]
    access = {flag.strip() for flag in entry["Access"].split(",")}
    assert {"sensitive", "always sensitive", "never extractable", "local"} <= access
    assert "extractable" not in access


def jwk_for_key(authority: Authority) -> str:
    """RFC 7638 thumbprint of the authority's public key, from PyJWT's own JWK of it."""
    key = authority.certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    public = ECAlgorithm.to_jwk(key, as_dict=True)
    members = {name: public[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


# --- the published keys ---------------------------------------------------------------------


def test_jwks_publishes_the_signer_key_with_its_thumbprint_as_kid_and_its_chain(
    services: Services, signer_authority: Authority
) -> None:
    [jwk] = services.assertions.jwks()["keys"]

    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert jwk["kid"] == jwk_for_key(signer_authority)
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in jwk["x5c"]]
    assert chain == [signer_authority.certificate, services.issuing.certificate]
    assert jwt.PyJWK(jwk).key == chain[0].public_key()
    assert "d" not in jwk


# --- the token ------------------------------------------------------------------------------


def test_assertion_verifies_with_pyjwt_against_the_published_jwks(
    services: Services, client_certificate: x509.Certificate
) -> None:
    token = sign(services, client_certificate, now())

    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk_for(services, token)).key,
        algorithms=["ES256"],
        audience=SITE,
        issuer=services.settings.effective_public_url,
    )

    assert claims["sub"] == "user-42"
    assert claims["certificate_user_id"] == "shm-assert01"
    assert claims["serial"] == format(client_certificate.serial_number, "x")
    assert claims["serial"] == claims["serial"].lower()
    assert b64url_decode(claims["x5t#S256"]) == client_certificate.fingerprint(hashes.SHA256())
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == services.settings.return_assertion_seconds
    assert len(claims["jti"]) >= 22
    assert set(claims) == {
        "iss", "aud", "sub", "certificate_user_id", "serial", "x5t#S256",
        "iat", "nbf", "exp", "jti",
    }  # fmt: skip


def test_assertion_verifies_by_hand_from_the_jwks_without_a_jwt_library(
    services: Services, client_certificate: x509.Certificate
) -> None:
    token = sign(services, client_certificate, now())
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    jwk = jwk_for(services, token)
    public_key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(jwk["x"]), "big"),
        int.from_bytes(b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    raw = b64url_decode(signature_b64)
    assert len(raw) == 64  # JWS: r || s, 32 bytes each (RFC 7518 3.4), not DER
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))

    public_key.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    assert header == {"alg": "ES256", "kid": jwk["kid"], "typ": "JWT"}
    assert "x5c" not in header
    assert json.loads(b64url_decode(payload_b64))["aud"] == SITE

    tampered = bytearray(raw)
    tampered[5] ^= 1
    forged = encode_dss_signature(
        int.from_bytes(tampered[:32], "big"), int.from_bytes(tampered[32:], "big")
    )
    with pytest.raises(InvalidSignature):
        public_key.verify(forged, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))


def test_two_assertions_have_different_ids(
    services: Services, client_certificate: x509.Certificate
) -> None:
    moment = now()
    first, second = (sign(services, client_certificate, moment) for _ in range(2))
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


# --- verify and redeem ----------------------------------------------------------------------


def test_redeem_returns_the_claims_once_and_refuses_a_replay(
    services: Services, client_certificate: x509.Certificate, engine: Engine
) -> None:
    moment = now()
    token = sign(services, client_certificate, moment)

    claims = services.assertions.verify_and_redeem(
        engine, token, site_name=SITE, now=moment + dt.timedelta(seconds=5)
    )

    assert (claims.site_name, claims.user_id) == (SITE, "user-42")
    assert claims.certificate_user_id == "shm-assert01"
    assert claims.serial == format(client_certificate.serial_number, "x")
    assert claims.expires_at == moment + dt.timedelta(
        seconds=services.settings.return_assertion_seconds
    )
    assert claims.as_claims() == jwt.decode(token, options={"verify_signature": False})
    with pytest.raises(ReturnAssertionReplayedError):
        services.assertions.verify_and_redeem(
            engine, token, site_name=SITE, now=moment + dt.timedelta(seconds=6)
        )


def test_redeem_purges_assertions_that_have_expired(
    services: Services, client_certificate: x509.Certificate, engine: Engine
) -> None:
    moment = now()
    lifetime = dt.timedelta(seconds=services.settings.return_assertion_seconds)
    services.assertions.verify_and_redeem(
        engine, sign(services, client_certificate, moment), site_name=SITE, now=moment
    )
    later = moment + lifetime + CLOCK_SKEW + dt.timedelta(seconds=1)

    services.assertions.verify_and_redeem(
        engine, sign(services, client_certificate, later), site_name=SITE, now=later
    )

    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(redeemed_assertions))
        assert count.scalar_one() == 1


@pytest.mark.parametrize("late", [0, 29])
def test_assertion_is_accepted_until_its_expiry_plus_the_allowed_skew(
    services: Services, client_certificate: x509.Certificate, late: int
) -> None:
    moment = now()
    token = sign(services, client_certificate, moment)
    expiry = moment + dt.timedelta(seconds=services.settings.return_assertion_seconds)

    claims = services.assertions.verify(
        token, site_name=SITE, now=expiry + dt.timedelta(seconds=late)
    )

    assert claims.expires_at == expiry


def test_expired_assertion_is_refused(
    services: Services, client_certificate: x509.Certificate, engine: Engine
) -> None:
    moment = now()
    token = sign(services, client_certificate, moment)
    expiry = moment + dt.timedelta(seconds=services.settings.return_assertion_seconds)

    with pytest.raises(ReturnAssertionExpiredError):
        services.assertions.verify_and_redeem(
            engine, token, site_name=SITE, now=expiry + CLOCK_SKEW
        )
    with engine.connect() as connection:
        assert connection.execute(select(redeemed_assertions)).all() == []


def test_assertion_from_the_future_is_refused(
    services: Services, client_certificate: x509.Certificate
) -> None:
    moment = now()
    token = sign(services, client_certificate, moment + dt.timedelta(seconds=31))

    with pytest.raises(ReturnAssertionInvalidError, match="not valid yet"):
        services.assertions.verify(token, site_name=SITE, now=moment)


def test_assertion_for_another_site_is_refused(
    services: Services, client_certificate: x509.Certificate, engine: Engine
) -> None:
    moment = now()
    token = sign(services, client_certificate, moment, site="other-shop")

    with pytest.raises(ReturnAssertionInvalidError, match="another site"):
        services.assertions.verify_and_redeem(engine, token, site_name=SITE, now=moment)


def test_assertion_from_another_issuer_is_refused(
    services: Services, client_certificate: x509.Certificate
) -> None:
    moment = now()
    elsewhere = load_assertion_signer(
        services.engine,
        services.token,
        issuer="https://elsewhere.example",
        lifetime=dt.timedelta(seconds=60),
        now=moment,
    )
    token = sign(dataclasses.replace(services, assertions=elsewhere), client_certificate, moment)

    with pytest.raises(ReturnAssertionInvalidError, match="another server"):
        services.assertions.verify(token, site_name=SITE, now=moment)


def _reencode(token: str, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """The token with its header or claims changed and the original signature kept."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    if header is not None:
        header_b64 = _b64url_json(header)
    if claims:
        payload = json.loads(b64url_decode(payload_b64))
        payload_b64 = _b64url_json(payload | claims)
    return f"{header_b64}.{payload_b64}.{signature_b64}"


def _b64url_json(value: dict[str, Any]) -> str:
    encoded = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(encoded).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "someone-else"},
        {"serial": "1"},
        {"certificate_user_id": "shm-other001"},
        {"exp": 4_000_000_000},
    ],
)
def test_tampered_assertion_is_refused(
    services: Services,
    client_certificate: x509.Certificate,
    engine: Engine,
    change: dict[str, Any],
) -> None:
    moment = now()
    token = _reencode(sign(services, client_certificate, moment), **change)

    with pytest.raises(ReturnAssertionInvalidError, match="signature does not verify"):
        services.assertions.verify_and_redeem(engine, token, site_name=SITE, now=moment)


def test_assertion_with_a_forged_signature_is_refused(
    services: Services, client_certificate: x509.Certificate
) -> None:
    moment = now()
    header, payload, signature = sign(services, client_certificate, moment).split(".")
    raw = bytearray(b64url_decode(signature))
    raw[-1] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

    with pytest.raises(ReturnAssertionInvalidError, match="signature"):
        services.assertions.verify(f"{header}.{payload}.{forged}", site_name=SITE, now=moment)


def test_assertion_signed_by_another_key_under_our_kid_is_refused(
    services: Services, client_certificate: x509.Certificate
) -> None:
    moment = now()
    claims = jwt.decode(
        sign(services, client_certificate, moment), options={"verify_signature": False}
    )
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, other, algorithm="ES256", headers={"kid": services.assertions.kid})

    with pytest.raises(ReturnAssertionInvalidError, match="signature does not verify"):
        services.assertions.verify(forged, site_name=SITE, now=moment)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"alg": "none", "typ": "JWT"}, "alg must be ES256"),
        ({"alg": "HS256", "typ": "JWT"}, "alg must be ES256"),
        ({"alg": "ES256", "typ": "JWT", "kid": "not-ours"}, "kid names none"),
        ({"alg": "ES256", "typ": "JWT"}, "kid names none"),
        ({"alg": "ES256", "kid": ["a"]}, "not a well-formed JWS"),
    ],
)
def test_assertion_with_a_header_we_do_not_sign_is_refused(
    services: Services, client_certificate: x509.Certificate, header: dict[str, Any], message: str
) -> None:
    moment = now()
    token = _reencode(sign(services, client_certificate, moment), header)

    with pytest.raises(ReturnAssertionInvalidError, match=message):
        services.assertions.verify(token, site_name=SITE, now=moment)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "a.b.c", "x" * 5000, secrets.token_urlsafe(40)],
    # Stable ids: parallel test workers must collect the same names (pytest-xdist).
    ids=["empty", "one-part", "three-parts", "long", "random"],
)
def test_garbage_is_refused_as_invalid(services: Services, text: str) -> None:
    with pytest.raises(ReturnAssertionInvalidError):
        services.assertions.verify(text, site_name=SITE, now=now())


# --- the way back after the installation check ----------------------------------------------


def _enrolled_certificate(
    services: Services, *, site_id: int | None, return_url: str | None
) -> tuple[x509.Certificate, str]:
    """A certificate issued for a new enrollment; also the enrollment's certificate user ID."""
    moment = now()
    invitation = services.enrollments.create(
        user_id="site-user-7",
        email="user7@example.jp",
        site_id=site_id,
        return_url=return_url,
        now=moment,
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, invitation.certificate_user_id)])
    with services.engine.begin() as connection:
        certificate, _ = issue(
            connection,
            services.issuing,
            subject=name,
            public_key=key.public_key(),
            profile=CertificateProfile.CLIENT,
            now=moment,
            lifetime=dt.timedelta(days=30),
            enrollment_id=invitation.enrollment_id,
        )
    return certificate, invitation.certificate_user_id


def _new_site(services: Services, *return_urls: str) -> SiteRow:
    return services.sites.create(
        name=f"site-{secrets.token_hex(4)}",
        display_name="Example Shop",
        return_urls=return_urls,
        now=now(),
    ).site


def test_return_to_site_carries_an_assertion_about_the_enrollment(services: Services) -> None:
    site = _new_site(services, "https://shop.example.jp/return")
    certificate, cuid = _enrolled_certificate(
        services, site_id=site.id, return_url="https://shop.example.jp/return"
    )
    moment = now()

    back = services.assertions.return_to_site(
        services.engine, services.issuing, certificate, now=moment
    )

    assert back is not None
    assert (back.site_name, back.site_display_name) == (site.name, "Example Shop")
    assert back.return_url == "https://shop.example.jp/return"
    claims = services.assertions.verify(back.assertion, site_name=site.name, now=moment)
    assert (claims.user_id, claims.certificate_user_id) == ("site-user-7", cuid)
    assert claims.serial == format(certificate.serial_number, "x")


def test_no_way_back_for_an_enrollment_without_a_site(
    services: Services, client_certificate: x509.Certificate
) -> None:
    certificate, _ = _enrolled_certificate(services, site_id=None, return_url=None)

    for presented in (certificate, client_certificate):
        back = services.assertions.return_to_site(
            services.engine, services.issuing, presented, now=now()
        )
        assert back is None


def test_no_way_back_for_a_site_enrollment_without_a_return_url(services: Services) -> None:
    site = _new_site(services, "https://shop.example.jp/return")
    certificate, _ = _enrolled_certificate(services, site_id=site.id, return_url=None)

    assert (
        services.assertions.return_to_site(
            services.engine, services.issuing, certificate, now=now()
        )
        is None
    )


def test_no_way_back_once_the_site_took_the_url_off_its_list(services: Services) -> None:
    site = _new_site(services, "https://shop.example.jp/return")
    certificate, _ = _enrolled_certificate(
        services, site_id=site.id, return_url="https://shop.example.jp/return"
    )
    services.sites.set_return_urls(site.name, ("https://shop.example.jp/new-return",))

    assert (
        services.assertions.return_to_site(
            services.engine, services.issuing, certificate, now=now()
        )
        is None
    )


def test_no_way_back_to_a_disabled_site(services: Services) -> None:
    site = _new_site(services, "https://shop.example.jp/return")
    certificate, _ = _enrolled_certificate(
        services, site_id=site.id, return_url="https://shop.example.jp/return"
    )
    with services.engine.begin() as connection:
        update_site(connection, site.id, status="disabled")

    assert (
        services.assertions.return_to_site(
            services.engine, services.issuing, certificate, now=now()
        )
        is None
    )


# --- renewal --------------------------------------------------------------------------------


@pytest.fixture
def fresh_issuing(services: Services, tmp_path: Path) -> Iterator[tuple[Engine, Authority]]:
    """A new database in which the session's issuing CA is recorded (no signer yet); the
    signer keys made in it are destroyed afterwards."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'renewal.db'}")
    migrate(engine)
    with engine.begin() as connection:
        record_authority(
            connection,
            name="recorded-issuing",
            role=AuthorityRole.ISSUING,
            parent_id=None,
            ref=services.issuing.key_ref,
            certificate=services.issuing.certificate,
            now=now(),
        )
    yield engine, load_authority(engine, services.token, AuthorityRole.ISSUING)
    with engine.connect() as connection:
        rows = connection.execute(
            select(certificate_authorities).where(certificate_authorities.c.role == "assertion")
        ).all()
    for row in rows:
        services.token.destroy_key(
            KeyRef(
                row.key_token_label,
                row.key_label,
                bytes.fromhex(row.key_id),
                KeyAlgorithm(row.key_algorithm),
            )
        )
    engine.dispose()


def test_a_renewed_signer_is_used_and_the_previous_one_stays_published(
    services: Services,
    client_certificate: x509.Certificate,
    fresh_issuing: tuple[Engine, Authority],
) -> None:
    engine, issuing = fresh_issuing
    start = now()
    lifetime = dt.timedelta(seconds=60)

    def ensure(at: dt.datetime) -> bool:
        return ensure_assertion_signer(
            engine, services.token, organization="Renewal", issuing=issuing, now=at
        )

    def loaded(at: dt.datetime) -> AssertionSigner:
        return load_assertion_signer(
            engine, services.token, issuer="https://r.example", lifetime=lifetime, now=at
        )

    assert ensure(start)
    assert not ensure(start + dt.timedelta(days=300))
    first = loaded(start)
    renewal = start + dt.timedelta(days=340)  # less than 30 days before the end
    assert ensure(renewal)
    second = loaded(renewal)
    old_token = first.sign(
        site_name=SITE,
        user_id="u",
        certificate=client_certificate,
        certificate_user_id="shm-assert01",
        now=renewal,
    )

    assert second.kid != first.kid
    assert [key["kid"] for key in second.jwks()["keys"]] == [second.kid, first.kid]
    assert (
        jwt.get_unverified_header(
            second.sign(
                site_name=SITE,
                user_id="u",
                certificate=client_certificate,
                certificate_user_id="shm-assert01",
                now=renewal,
            )
        )["kid"]
        == second.kid
    )
    assert second.verify(old_token, site_name=SITE, now=renewal).user_id == "u"
    # Once the previous signer's certificate has ended, it is no longer published.
    assert [key["kid"] for key in loaded(start + dt.timedelta(days=366)).jwks()["keys"]] == [
        second.kid
    ]
