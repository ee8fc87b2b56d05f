"""A relying site's nginx, configured with the README's server block, in front of a real
Shomei: it accepts the certificate a person downloaded and passes it to the application,
refuses a request without a certificate or with a foreign one, and refuses a revoked one
after asking Shomei's OCSP responder itself, over plain HTTP."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from sqlalchemy import Engine

from pwa_server.enrollment.revocation import revoke
from pwa_server.pki.ocsp import STATUS_RECHECK
from pwa_server.store.database import create_database_engine
from testbed.serving import free_port, instance_settings
from tests.conftest import openssl, run_tool
from tests.e2e.journey.conftest import InvitationPool, JourneyServer
from tests.e2e.journey.flow import PIXEL, Identity, Invitation, Phone, certificates_of, open_pkcs12
from tests.e2e.nginx import (
    Application,
    Nginx,
    Reply,
    StubResolver,
    curl,
    fill,
    readme_server_block,
)

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None,
    reason="nginx is not installed (the Makefile's TEST_PACKAGES installs nginx-light)",
)

# One invitation for the certificate every test shares, one for each test that revokes.
INVITATIONS = 3


@dataclass(frozen=True)
class Member:
    """Someone who walked the journey on an Android phone, with the .p12 opened by openssl."""

    enrollment_id: str
    identity: Identity
    certificate: x509.Certificate

    @property
    def certificate_user_id(self) -> str:
        common_name = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(common_name[0].value)


@dataclass
class Site:
    """A relying site: nginx with the README's server block, and the application behind it."""

    nginx: Nginx
    url: str
    cacert: Path

    def get(self, identity: Identity | None = None, headers: dict[str, str] | None = None) -> Reply:
        """A request on a new TLS connection, presenting the identity if given."""
        files = identity.files if identity is not None else None
        return curl(self.url, cacert=self.cacert, identity=files, headers=headers)


# --- Shomei ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shomei(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JourneyServer]:
    """An instance of its own (revocations here touch no other test); mails go to files."""
    base = tmp_path_factory.mktemp("shomei")
    settings = instance_settings(base / "var")
    server = JourneyServer(settings, base / "serve.log", {})
    initialised = server.shomei("init")
    assert initialised.returncode == 0, initialised.stderr
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database(shomei: JourneyServer) -> Iterator[Engine]:
    engine = create_database_engine(shomei.settings.effective_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def invitations(shomei: JourneyServer) -> InvitationPool:
    pool = InvitationPool(shomei)
    pool.prefetch(INVITATIONS)
    return pool


def walk_the_journey(server: JourneyServer, invitation: Invitation, directory: Path) -> Member:
    """One-time password, secret question, download password, the Android .p12 opened."""
    with Phone(server, language="en", user_agent=PIXEL) as phone:
        credentials = phone.enroll(invitation)
        download = phone.download(credentials, "android")
    assert download.status_code == 200, download.text
    p12 = directory / f"{credentials.certificate_user_id}.p12"
    p12.write_bytes(download.content)
    identity = open_pkcs12(p12, credentials.download_password)
    certificate = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
    return Member(invitation.enrollment_id, identity, certificate)


@pytest.fixture(scope="module")
def member(
    shomei: JourneyServer, invitations: InvitationPool, tmp_path_factory: pytest.TempPathFactory
) -> Member:
    """A certificate that stays good for the whole module."""
    return walk_the_journey(shomei, invitations.take(), tmp_path_factory.mktemp("member"))


@pytest.fixture
def fresh_member(shomei: JourneyServer, invitations: InvitationPool, tmp_path: Path) -> Member:
    """A certificate of this test's own, to revoke."""
    return walk_the_journey(shomei, invitations.take(), tmp_path)


def revoke_for_key_compromise(database: Engine, member: Member) -> None:
    """Revoke the member's certificate, and let STATUS_RECHECK pass: until then a worker that
    answered nginx's GET before may repeat its good answer (the README says so)."""
    [recorded] = certificates_of(database, member.enrollment_id)
    revoke(
        database,
        issuer_id=recorded["issuer_id"],
        serial=recorded["serial"],
        reason="keyCompromise",
        now=dt.datetime.now(dt.UTC),
    )
    time.sleep(STATUS_RECHECK.total_seconds())


# --- the relying site ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_ca_file(shomei: JourneyServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shomei's root and issuing CA certificates in one file, fetched as the README says."""
    pki = f"http://127.0.0.1:{shomei.settings.http_port}/pki"
    fetched = run_tool("curl", "-fsS", f"{pki}/root.pem", f"{pki}/issuing.pem")
    assert fetched.returncode == 0, fetched.stderr
    path = tmp_path_factory.mktemp("site") / "shomei-ca.pem"
    path.write_text(fetched.stdout)
    return path


@pytest.fixture(scope="module")
def resolver(shomei: JourneyServer) -> Iterator[StubResolver]:
    """The site's DNS, which knows the host named in Shomei's OCSP and CRL URLs."""
    host = urlsplit(shomei.settings.public_pki_url).hostname
    assert host == "localhost", "the URLs should name a host, as real deployments do"
    with StubResolver({host: "127.0.0.1"}) as running:
        yield running


@pytest.fixture(scope="module")
def application() -> Iterator[Application]:
    with Application() as running:
        yield running


@dataclass(frozen=True)
class RelyingSites:
    """Everything a site needs around nginx; each `open` is a new nginx on a new port."""

    shomei: JourneyServer
    client_ca_file: Path
    resolver: StubResolver
    application: Application
    directories: pytest.TempPathFactory

    @contextmanager
    def open(self, extra: str = "") -> Iterator[Site]:
        """nginx with the README's server block; `extra` goes into the http block beside it."""
        port = free_port()
        tls = self.shomei.settings.tls_dir
        server_block = fill(
            readme_server_block(),
            listen=f"127.0.0.1:{port}",
            server_name="localhost",
            certificate=str(tls / "server.pem"),
            certificate_key=str(tls / "server.key"),
            client_ca_file=str(self.client_ca_file),
            resolver=self.resolver.address,
            upstream=self.application.url,
        )
        with Nginx(self.directories.mktemp("nginx"), f"{extra}\n{server_block}") as nginx:
            yield Site(nginx, f"https://127.0.0.1:{port}/", Path(self.shomei.ca_bundle))


@pytest.fixture(scope="module")
def relying_sites(
    shomei: JourneyServer,
    client_ca_file: Path,
    resolver: StubResolver,
    application: Application,
    tmp_path_factory: pytest.TempPathFactory,
) -> RelyingSites:
    return RelyingSites(shomei, client_ca_file, resolver, application, tmp_path_factory)


@pytest.fixture(scope="module")
def site(relying_sites: RelyingSites) -> Iterator[Site]:
    """The README's configuration as it is."""
    with relying_sites.open() as opened:
        yield opened


@pytest.fixture(scope="module")
def impostor(shomei: JourneyServer, tmp_path_factory: pytest.TempPathFactory) -> Identity:
    """A client certificate whose issuer is named like Shomei's issuing CA, signed by a key
    that is not Shomei's."""
    with shomei.client() as client:
        issuing = x509.load_pem_x509_certificate(
            client.get(f"{shomei.base_url}/pki/issuing.pem").content
        )
    foreign_ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=shm-impostor,O=Shomei"))
        .issuer_name(issuing.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([x509.OID_CLIENT_AUTH]), critical=False)
        .sign(foreign_ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("impostor")
    identity = Identity(directory / "cert.pem", directory / "key.pem")
    identity.certificate.write_bytes(certificate.public_bytes(Encoding.PEM))
    identity.key.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return identity


# --- accepted --------------------------------------------------------------------------------


def test_the_certificate_a_person_downloaded_is_accepted(site: Site, member: Member) -> None:
    reply = site.get(member.identity)
    assert reply.status == 200, reply.body
    seen = reply.headers_seen()
    assert seen["x-ssl-client-verify"] == ["SUCCESS"]
    assert seen["x-ssl-client-s-dn"] == [f"CN={member.certificate_user_id},O=Shomei"]


def test_the_application_receives_the_certificate_and_its_serial(
    site: Site, member: Member
) -> None:
    seen = site.get(member.identity).headers_seen()
    [escaped] = seen["x-ssl-client-cert"]
    assert x509.load_pem_x509_certificate(unquote(escaped).encode()) == member.certificate
    [serial] = seen["x-ssl-client-serial"]
    assert serial == serial.upper()
    assert int(serial, 16) == member.certificate.serial_number


def test_a_client_cannot_forge_the_headers_nginx_sets(site: Site, member: Member) -> None:
    forged = {
        "X-SSL-Client-Verify": "SUCCESS",
        "X-SSL-Client-S-DN": "CN=shm-officer1,O=Shomei",
        "X-SSL-Client-Serial": "01",
    }
    seen = site.get(member.identity, headers=forged).headers_seen()
    assert seen["x-ssl-client-verify"] == ["SUCCESS"]
    assert seen["x-ssl-client-s-dn"] == [f"CN={member.certificate_user_id},O=Shomei"]
    assert seen["x-ssl-client-serial"] != ["01"]
    assert len(seen["x-ssl-client-serial"]) == 1


# --- refused --------------------------------------------------------------------------------


def test_a_request_without_a_certificate_is_refused(site: Site) -> None:
    reply = site.get()
    assert reply.status == 400
    assert "No required SSL certificate was sent" in reply.body


def test_a_certificate_from_another_ca_is_refused_even_under_shomeis_issuer_name(
    site: Site, impostor: Identity
) -> None:
    reply = site.get(impostor)
    assert reply.status == 400
    assert "The SSL certificate error" in reply.body
    assert "client SSL certificate verify error: (7:certificate signature failure)" in (
        site.nginx.log()
    )


def test_a_revoked_certificate_is_refused_once_shomeis_ocsp_responder_says_so(
    site: Site, fresh_member: Member, database: Engine
) -> None:
    assert site.get(fresh_member.identity).status == 200
    revoke_for_key_compromise(database, fresh_member)
    reply = site.get(fresh_member.identity)
    assert reply.status == 400
    assert "The SSL certificate error" in reply.body
    assert "client SSL certificate verify error: certificate revoked" in site.nginx.log()


# --- what the README says beside the configuration ---------------------------------------------


def test_with_an_ocsp_cache_a_revocation_reaches_nginx_only_when_it_restarts(
    relying_sites: RelyingSites, fresh_member: Member, database: Engine
) -> None:
    with relying_sites.open("ssl_ocsp_cache shared:shomei_ocsp:1m;") as cached:
        assert cached.get(fresh_member.identity).status == 200
        revoke_for_key_compromise(database, fresh_member)
        # The good answer is kept until its nextUpdate, hours away...
        assert cached.get(fresh_member.identity).status == 200
        # ...and a reload keeps the shared cache...
        cached.nginx.reload()
        assert cached.get(fresh_member.identity).status == 200
        # ...which only a restart empties.
        cached.nginx.restart()
        assert cached.get(fresh_member.identity).status == 400


def _fetch_crls(shomei: JourneyServer, directory: Path, *roles: str) -> Path:
    """The README's recipe: Shomei's DER CRLs, converted to PEM, in one file for ssl_crl."""
    bundle = directory / "shomei-crls.pem"
    pems = []
    for role in roles:
        der = directory / f"{role}.crl"
        url = f"http://127.0.0.1:{shomei.settings.http_port}/pki/{role}.crl"
        fetched = run_tool("curl", "-fsS", "-o", der, url)
        assert fetched.returncode == 0, fetched.stderr
        converted = openssl("crl", "-inform", "DER", "-in", der)
        assert converted.returncode == 0, converted.stderr
        pems.append(converted.stdout)
    bundle.write_text("".join(pems))
    return bundle


def test_the_readme_crl_bundle_lets_nginx_accept_a_good_certificate(
    relying_sites: RelyingSites, shomei: JourneyServer, member: Member, tmp_path: Path
) -> None:
    bundle = tmp_path / "shomei-crls.pem"
    url = f"http://127.0.0.1:{shomei.settings.http_port}/pki/crls.pem"
    fetched = run_tool("curl", "-fsS", "-o", bundle, url)
    assert fetched.returncode == 0, fetched.stderr
    with relying_sites.open(f"ssl_crl {bundle};") as with_crl:
        assert with_crl.get(member.identity).status == 200


def test_with_the_root_and_issuing_crls_nginx_accepts_a_good_certificate(
    relying_sites: RelyingSites, shomei: JourneyServer, member: Member, tmp_path: Path
) -> None:
    crls = _fetch_crls(shomei, tmp_path, "issuing", "root")
    with relying_sites.open(f"ssl_crl {crls};") as with_crl:
        assert with_crl.get(member.identity).status == 200


def test_with_crls_a_revocation_reaches_nginx_when_the_crl_is_fetched_and_nginx_reloads(
    relying_sites: RelyingSites,
    shomei: JourneyServer,
    fresh_member: Member,
    database: Engine,
    tmp_path: Path,
) -> None:
    crls = _fetch_crls(shomei, tmp_path, "issuing", "root")
    with relying_sites.open(f"ssl_crl {crls};") as with_crl:
        assert with_crl.get(fresh_member.identity).status == 200
        revoke_for_key_compromise(database, fresh_member)
        _fetch_crls(shomei, tmp_path, "issuing", "root")
        with_crl.nginx.reload()
        reply = with_crl.get(fresh_member.identity)
        log = with_crl.nginx.log()
    assert reply.status == 400
    assert "client SSL certificate verify error: (23:certificate revoked)" in log


def test_a_crl_file_with_only_the_issuing_cas_crl_makes_nginx_refuse_a_good_certificate(
    relying_sites: RelyingSites, shomei: JourneyServer, member: Member, tmp_path: Path
) -> None:
    crls = _fetch_crls(shomei, tmp_path, "issuing")
    with relying_sites.open(f"ssl_crl {crls};") as with_crl:
        reply = with_crl.get(member.identity)
        log = with_crl.nginx.log()
    assert reply.status == 400
    assert "client SSL certificate verify error: (3:unable to get certificate CRL)" in log
