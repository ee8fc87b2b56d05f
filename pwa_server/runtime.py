"""What a running Shomei process holds: the database engine, the token, the loaded CAs and the
enrollment services built on them."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import Engine

from hsm import HsmError, Token, TokenHmacKey, ensure_hmac_key
from pwa_server.enrollment.administration import EnrollmentAdministration
from pwa_server.enrollment.download import Downloads
from pwa_server.enrollment.hashing import SecretHashes, argon2_slots_for
from pwa_server.enrollment.mails import EnrollmentMails, MailSender
from pwa_server.enrollment.policy import EnrollmentPolicy
from pwa_server.enrollment.service import EnrollmentService
from pwa_server.officers.service import OfficerService
from pwa_server.pki.authority import Authority, load_authority
from pwa_server.pki.issuance import Issuance
from pwa_server.pki.ocsp import OcspResponder, OcspResponders
from pwa_server.pki.packaging.signing_identity import SigningIdentity, load_signing_identity
from pwa_server.pki.profiles import PublicationUrls
from pwa_server.pki.rollover import load_issuing_generations
from pwa_server.pki.tls_identity import TlsFiles
from pwa_server.settings import ConfigurationError, Settings
from pwa_server.sites.assertions import AssertionSigner, load_assertion_signer
from pwa_server.sites.registry import SiteRegistry
from pwa_server.store.database import check, create_database_engine
from pwa_server.vocabulary import AuthorityRole

# SoftHSM start-up sometimes fails with a general error when two processes initialise it at
# the same instant (DESIGN.md); a short retry gets past that.
_OPEN_ATTEMPTS = 3
logger = logging.getLogger("shomei.runtime")
# The token's HMAC key for generated secrets; a new key would get a new label (hashes name it).
HMAC_KEY_LABEL = "shomei-hmac-1"


@dataclass(frozen=True)
class Services:
    """The shared, thread-safe resources of one process."""

    settings: Settings
    engine: Engine
    token: Token
    root: Authority
    issuing: Authority
    enrollments: EnrollmentService
    enrollment_administration: EnrollmentAdministration
    downloads: Downloads
    ocsp: OcspResponders
    sites: SiteRegistry
    assertions: AssertionSigner
    officers: OfficerService
    # Every issuing CA whose certificates may still be presented, the one in use first.
    issuers: tuple[Authority, ...]
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def now(self) -> dt.datetime:
        """The current time, from the injected clock (tests move it)."""
        return self.clock()

    @property
    def check_url(self) -> str:
        """The installation check, on the listener that asks for a client certificate."""
        host = urlsplit(self.settings.effective_public_url).hostname or "localhost"
        return f"https://{host}:{self.settings.check_port}/check"

    def close(self) -> None:
        self.token.close()
        self.engine.dispose()


def open_token(settings: Settings) -> Token:
    """Log in to the configured token (the PIN is read here and kept only by the Token)."""
    return Token.open(
        settings.pkcs11_module,
        settings.token_label,
        settings.read_pin(),
        settings.effective_softhsm_conf,
    )


def open_services(settings: Settings, *, retry: bool = False) -> Services:
    """Connect to the database, log in to the token and load the active CAs.

    Raises the domain's own errors (DatabaseError, HsmError, AuthorityError,
    ConfigurationError) with a message that names what is wrong.
    """
    engine = create_database_engine(settings.effective_database_url)
    try:
        check(engine)
        token = _open_token_with_retry(settings, attempts=_OPEN_ATTEMPTS if retry else 1)
    except BaseException:
        engine.dispose()
        raise
    try:
        hashes = secret_hashes(settings, token)
        root = load_authority(engine, token, AuthorityRole.ROOT)
        issuing = load_authority(engine, token, AuthorityRole.ISSUING)
        generations = load_issuing_generations(engine, token, now=dt.datetime.now(dt.UTC))
        responder = OcspResponders(
            [
                OcspResponder(engine, generation.issuing, generation.responder)
                for generation in generations
                if generation.responder is not None
            ]
        )
        policy = EnrollmentPolicy.from_settings(settings)
        downloads = Downloads(
            engine,
            policy,
            issuance=Issuance(
                issuing,
                organization=policy.organization,
                urls=publication_urls(settings, issuing),
            ),
            root=root,
            signing=_configuration_profile_signer(settings),
            identifier_prefix=configuration_profile_identifier_prefix(settings),
            hashes=hashes,
        )
        registry = site_registry(settings, engine)
        assertions = load_assertion_signer(
            engine,
            token,
            issuer=settings.effective_public_url,
            lifetime=dt.timedelta(seconds=settings.return_assertion_seconds),
            now=dt.datetime.now(dt.UTC),
        )
    except BaseException:
        token.close()
        engine.dispose()
        raise
    return Services(
        settings,
        engine,
        token,
        root,
        issuing,
        enrollment_service(settings, engine, hashes),
        enrollment_administration(settings, engine, hashes),
        downloads,
        responder,
        registry,
        assertions,
        OfficerService.from_settings(settings, engine),
        tuple(generation.issuing for generation in generations),
    )


def ensure_secret_hash_key(token: Token) -> tuple[TokenHmacKey, bool]:
    """The token's HMAC key for generated secrets, made if missing; True if made.

    `shomei init` makes it; an installation from before it existed gets it when it next
    starts (`shomei serve` opens the services once before it starts its workers, so that
    they all find the same key).
    """
    return ensure_hmac_key(token, HMAC_KEY_LABEL)


def secret_hashes(settings: Settings, token: Token) -> SecretHashes:
    """How secrets are hashed: generated ones with the token's HMAC key, chosen ones with
    Argon2id within this worker's share of memory."""
    key, created = ensure_secret_hash_key(token)
    if created:
        logger.warning("created the HMAC key %r for generated secrets in the token", key.label)
    slots = settings.argon2_concurrency or argon2_slots_for(settings.workers)
    return SecretHashes(key, argon2_slots=slots)


# What an enrollment service and an enrollment administration are made of, in that order.
_EnrollmentParts = tuple[Engine, EnrollmentPolicy, EnrollmentMails, str, SecretHashes]


def _enrollment_parts(settings: Settings, engine: Engine, hashes: SecretHashes) -> _EnrollmentParts:
    host = urlsplit(settings.effective_public_url).hostname or "localhost"
    mails = EnrollmentMails(
        MailSender(settings.mail_from, settings.effective_public_url, message_id_domain=host),
        zone=settings.zone,
    )
    policy = EnrollmentPolicy.from_settings(settings)
    return engine, policy, mails, settings.effective_public_url, hashes


def enrollment_service(
    settings: Settings, engine: Engine, hashes: SecretHashes
) -> EnrollmentService:
    """The enrollment state machine of the user's steps (the CLI uses it too)."""
    return EnrollmentService(*_enrollment_parts(settings, engine, hashes))


def enrollment_administration(
    settings: Settings, engine: Engine, hashes: SecretHashes
) -> EnrollmentAdministration:
    """An administrator's operations on enrollments (the console, the sites' API, the CLI)."""
    return EnrollmentAdministration(*_enrollment_parts(settings, engine, hashes))


def site_registry(settings: Settings, engine: Engine) -> SiteRegistry:
    """The relying sites, with the server's webhook key (made by `shomei init`)."""
    try:
        key = settings.webhook_key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigurationError(
            f"{settings.webhook_key_file} is missing: run `shomei init`"
        ) from None
    return SiteRegistry(
        engine, bytes.fromhex(key), private_webhooks=settings.webhook_private_addresses
    )


def publication_urls(settings: Settings, issuing: Authority) -> PublicationUrls:
    """Where certificates of `issuing` say its CRL and certificate are: URLs of that CA's
    own (by its id), which keep answering for it after a key ceremony retires it, while
    /pki/issuing.* always names the CA in use."""
    return PublicationUrls(
        crl=f"{settings.public_pki_url}/ca/{issuing.id}.crl",
        ca_issuers=f"{settings.public_pki_url}/ca/{issuing.id}.crt",
        ocsp=f"{settings.public_pki_url}/ocsp",
    )


def configuration_profile_identifier_prefix(settings: Settings) -> str:
    """Reverse-DNS prefix of PayloadIdentifier: the public host name, reversed."""
    host = urlsplit(settings.effective_public_url).hostname or "localhost"
    return ".".join(reversed(host.split("."))) + ".shomei"


def _configuration_profile_signer(settings: Settings) -> SigningIdentity:
    """Loaded once per process: loading a private key validates it, which is slow for RSA."""
    files = TlsFiles(settings.tls_dir)
    return load_signing_identity(
        settings.profile_signing_certificate or files.certificate_chain,
        settings.profile_signing_key or files.private_key,
    )


def _open_token_with_retry(settings: Settings, attempts: int) -> Token:
    for attempt in range(1, attempts):
        try:
            return open_token(settings)
        except HsmError:
            time.sleep(0.2 * attempt)
    return open_token(settings)
