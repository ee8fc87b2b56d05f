"""Key ceremonies under dual control: M distinct security officers approve a new issuing CA or
a retirement before it runs, once; the new CA's key stays in the token.

Each test has a database of its own (SQLite and PostgreSQL) with a CA hierarchy made on the
session's token, so that the session's own issuing CA is never replaced.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, func, select, text

from pwa_server.audit import events
from pwa_server.officers.errors import (
    AlreadyApprovedError,
    ApprovalsMissingError,
    CeremonyClosedError,
    CeremonyExpiredError,
    CeremonyFailedError,
    InvalidCeremonyError,
    PermissionDeniedError,
)
from pwa_server.officers.key_ceremonies import KeyCeremonies
from pwa_server.officers.key_ceremony_models import KeyCeremony
from pwa_server.officers.roles import Role
from pwa_server.officers.service import OfficerService
from pwa_server.pki.authority import Authority, fingerprint, load_authority
from pwa_server.pki.hierarchy import ensure_hierarchy, ensure_ocsp_responder
from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.pki.rollover import active_issuing_fingerprint
from pwa_server.runtime import Services
from pwa_server.settings import Settings
from pwa_server.store.tables import certificate_authorities
from pwa_server.vocabulary import AuthorityRole, CeremonyKind, CeremonyStatus
from tests.conftest import openssl, run_tool
from tests.hsm.test_ca_keys_in_token import listed_objects, pkcs11_tool
from tests.officers.authenticator import SoftwareAuthenticator
from tests.officers.conftest import ORIGIN, Clock, Member, Team, register
from tests.pki.test_rollover import REFUSE_RESPONDER

ORGANIZATION = "Ceremony Test"
LIFETIME = dt.timedelta(hours=24)
NEW = CeremonyKind.NEW_ISSUING_CA
RETIRE = CeremonyKind.RETIRE_ISSUING_CA


@pytest.fixture
def clock() -> Clock:
    """The officers' clock, started a little before now (each reading moves it on a second):
    certificates made here are checked by openssl against the real time."""
    started = Clock()
    started.current = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    return started


@pytest.fixture
def issuing(engine: Engine, services: Services, clock: Clock) -> Authority:
    """A root and an issuing CA with its OCSP responder, in this test's database."""
    _, made, _ = ensure_hierarchy(engine, services.token, organization=ORGANIZATION, now=clock())
    ensure_ocsp_responder(
        engine, services.token, organization=ORGANIZATION, issuing=made, now=clock()
    )
    return made


@pytest.fixture
def make_ceremonies(
    engine: Engine, services: Services, issuing: Authority
) -> Callable[[int], KeyCeremonies]:
    def make(approvals: int) -> KeyCeremonies:
        return KeyCeremonies(
            engine,
            services.token,
            approvals_required=approvals,
            proposal_lifetime=LIFETIME,
            organization=ORGANIZATION,
        )

    return make


@pytest.fixture
def ceremonies(make_ceremonies: Callable[[int], KeyCeremonies]) -> KeyCeremonies:
    """M = 2, the default."""
    return make_ceremonies(2)


def add_member(
    service: OfficerService,
    clock: Clock,
    by: Member,
    role: Role,
    name: str,
    approved_by: Member | None = None,
) -> Member:
    """An officer invited by `by` (the invitation approved by `approved_by` where a security
    officer's needs it), registered with an authenticator of their own."""
    link = service.invitations.invite(
        by_officer_id=by.officer.id, role=role, display_name=name, now=clock()
    )
    if approved_by is not None:
        [pending] = service.invitations.pending(now=clock())
        service.invitations.approve(
            by_officer_id=approved_by.officer.id, invitation_id=pending.id, now=clock()
        )
    key = SoftwareAuthenticator(ORIGIN)
    return Member(register(service, key, link.token, clock()), key)


@pytest.fixture
def second(service: OfficerService, clock: Clock, first: Member) -> Member:
    """A second security officer, with a second authenticator."""
    return add_member(service, clock, first, Role.SECURITY_OFFICER, "Kenji Security")


def step_up_and_approve(
    service: OfficerService,
    ceremonies: KeyCeremonies,
    member: Member,
    ceremony: KeyCeremony,
    clock: Clock,
) -> KeyCeremony:
    """What the console does: a fresh assertion of the officer's key, then the approval."""
    options = service.sign_in.step_up_options(officer_id=member.officer.id, now=clock())
    officer = service.sign_in.step_up(
        officer_id=member.officer.id,
        credential_json=member.key.get(options.options_json),
        expected_challenge=options.challenge,
        now=clock(),
    )
    return ceremonies.approve(ceremony_id=ceremony.id, officer_id=officer.id, now=clock())


def key_labels(services: Services) -> set[str]:
    return {info.label for info in services.token.key_objects()}


def issuing_rows(engine: Engine) -> dict[int, str]:
    table = certificate_authorities
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.id, table.c.status).where(table.c.role == "issuing")
        )
        return {row.id: row.status for row in rows}


def audit_actions(engine: Engine) -> list[tuple[str, str, str]]:
    """The log's events but those of making the team (officer.*: invitations)."""
    return [
        (event.action, event.actor, event.outcome)
        for event in reversed(events(engine, limit=50))
        if not event.action.startswith("officer.")
    ]


def write_pem(directory: Path, name: str, certificate: x509.Certificate) -> Path:
    path = directory / f"{name}.pem"
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return path


def test_one_officer_alone_cannot_execute_when_two_approvals_are_required(
    ceremonies: KeyCeremonies,
    services: Services,
    engine: Engine,
    clock: Clock,
    first: Member,
    second: Member,
    issuing: Authority,
) -> None:
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    labels_before = key_labels(services)

    with pytest.raises(ApprovalsMissingError, match="has 1: 1 more approval is missing") as raised:
        ceremonies.execute(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())

    assert (raised.value.required, raised.value.given, raised.value.missing) == (2, 1, 1)
    assert ceremony.required_approvals == 2
    assert ceremony.approved_by == (first.officer.id,)
    assert ceremonies.ceremony(ceremony.id, now=clock()).status is CeremonyStatus.OPEN
    assert active_issuing_fingerprint(engine) == fingerprint(issuing.certificate)
    assert key_labels(services) == labels_before


def test_a_second_officer_with_a_second_authenticator_approves_and_the_ceremony_runs(
    ceremonies: KeyCeremonies,
    service: OfficerService,
    engine: Engine,
    clock: Clock,
    first: Member,
    second: Member,
    issuing: Authority,
) -> None:
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())

    approved = step_up_and_approve(service, ceremonies, second, ceremony, clock)
    executed = ceremonies.execute(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())

    assert ceremony.target_authority_id == issuing.id
    assert approved.approved_by == (first.officer.id, second.officer.id)
    assert approved.executable
    assert executed.status is CeremonyStatus.EXECUTED
    assert executed.closed_by == first.officer.id
    assert executed.result == active_issuing_fingerprint(engine)
    assert executed.result != fingerprint(issuing.certificate)
    assert issuing_rows(engine)[issuing.id] == "retired"
    assert audit_actions(engine) == [
        ("approval.requested", first.officer.id, "success"),
        ("approval.granted", second.officer.id, "success"),
        ("key.generated", first.officer.id, "success"),
        ("key.retired", first.officer.id, "success"),
    ]
    [generated] = [e for e in events(engine, limit=50) if e.action == "key.generated"]
    assert generated.details is not None
    assert executed.result is not None
    assert executed.result in generated.details


def test_the_new_issuing_ca_key_stays_in_the_token_and_its_certificates_pass_openssl(
    ceremonies: KeyCeremonies,
    engine: Engine,
    services: Services,
    initialised: Settings,
    softhsm_env: dict[str, str],
    clock: Clock,
    first: Member,
    second: Member,
    tmp_path: Path,
) -> None:
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    ceremonies.execute(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    new_ca = load_authority(engine, services.token, AuthorityRole.ISSUING)
    root = load_authority(engine, services.token, AuthorityRole.ROOT)
    with engine.begin() as connection:
        client, _ = issue(
            connection,
            new_ca,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issued-by-new-ca")]),
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            profile=CertificateProfile.CLIENT,
            now=clock(),
            lifetime=dt.timedelta(days=30),
        )

    listing = run_tool(*pkcs11_tool(initialised, "-O"), env=softhsm_env)
    assert listing.returncode == 0, listing.stderr
    [private] = [
        entry
        for entry in listed_objects(listing.stdout)
        if entry["object"].startswith("Private Key Object")
        and entry.get("label") == new_ca.key_ref.label
    ]
    access = {flag.strip() for flag in private["Access"].split(",")}
    assert {"sensitive", "always sensitive", "never extractable", "local"} <= access
    assert "extractable" not in access
    root_pem = write_pem(tmp_path, "root", root.certificate)
    new_pem = write_pem(tmp_path, "newca", new_ca.certificate)
    checked = openssl("verify", "-CAfile", root_pem, new_pem)
    assert checked.returncode == 0, checked.stderr
    client_pem = write_pem(tmp_path, "client", client)
    checked = openssl("verify", "-CAfile", root_pem, "-untrusted", new_pem, client_pem)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{client_pem}: OK"


def test_a_registration_officer_or_an_auditor_can_neither_propose_nor_approve(
    ceremonies: KeyCeremonies, clock: Clock, team: Team, second: Member
) -> None:
    ceremony = ceremonies.propose(officer_id=team.security.officer.id, kind=NEW, now=clock())

    for member in (team.registration, team.auditor):
        with pytest.raises(PermissionDeniedError):
            ceremonies.approve(ceremony_id=ceremony.id, officer_id=member.officer.id, now=clock())
        with pytest.raises(PermissionDeniedError):
            ceremonies.propose(officer_id=member.officer.id, kind=NEW, now=clock())
        with pytest.raises(PermissionDeniedError):
            ceremonies.execute(ceremony_id=ceremony.id, officer_id=member.officer.id, now=clock())

    current = ceremonies.ceremony(ceremony.id, now=clock())
    assert current.approved_by == (team.security.officer.id,)
    assert current.missing_approvals == 1


def test_the_same_officer_cannot_approve_twice(
    make_ceremonies: Callable[[int], KeyCeremonies],
    service: OfficerService,
    clock: Clock,
    first: Member,
    second: Member,
) -> None:
    add_member(service, clock, first, Role.SECURITY_OFFICER, "Mei Security", second)
    ceremonies = make_ceremonies(3)
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())

    with pytest.raises(AlreadyApprovedError):
        ceremonies.approve(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())
    ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    with pytest.raises(AlreadyApprovedError):
        ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    with pytest.raises(ApprovalsMissingError, match="1 more approval is missing"):
        ceremonies.execute(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())

    assert ceremonies.ceremony(ceremony.id, now=clock()).approved_by == (
        first.officer.id,
        second.officer.id,
    )


def test_an_expired_proposal_can_be_neither_approved_nor_executed(
    ceremonies: KeyCeremonies, engine: Engine, clock: Clock, first: Member, second: Member
) -> None:
    unapproved = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    approved = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    ceremonies.approve(ceremony_id=approved.id, officer_id=second.officer.id, now=clock())
    fingerprint_before = active_issuing_fingerprint(engine)

    clock.advance(LIFETIME)

    assert ceremonies.ceremony(unapproved.id, now=clock()).status is CeremonyStatus.EXPIRED
    with pytest.raises(CeremonyExpiredError):
        ceremonies.approve(ceremony_id=unapproved.id, officer_id=second.officer.id, now=clock())
    with pytest.raises(CeremonyExpiredError):
        ceremonies.execute(ceremony_id=approved.id, officer_id=first.officer.id, now=clock())
    assert active_issuing_fingerprint(engine) == fingerprint_before
    # Stored as expired, as of the proposal's end.
    stored = ceremonies.ceremony(approved.id, now=approved.proposed_at)
    assert (stored.status, stored.closed_at) == (CeremonyStatus.EXPIRED, approved.expires_at)


def test_with_one_security_officer_dual_control_is_off_and_one_approval_suffices(
    ceremonies: KeyCeremonies,
    service: OfficerService,
    engine: Engine,
    clock: Clock,
    team: Team,
) -> None:
    assert ceremonies.dual_control_active() is False
    assert ceremonies.required_approvals() == 1

    ceremony = ceremonies.propose(officer_id=team.security.officer.id, kind=NEW, now=clock())
    # A second security officer joining later does not change what this proposal needs.
    add_member(service, clock, team.security, Role.SECURITY_OFFICER, "Kenji Security")
    executed = ceremonies.execute(
        ceremony_id=ceremony.id, officer_id=team.security.officer.id, now=clock()
    )

    assert (ceremony.required_approvals, ceremony.dual_control) == (1, False)
    assert executed.status is CeremonyStatus.EXECUTED
    assert executed.result == active_issuing_fingerprint(engine)
    assert ceremonies.dual_control_active() is True
    assert ceremonies.required_approvals() == 2


def test_m_is_never_more_than_the_active_security_officers(
    make_ceremonies: Callable[[int], KeyCeremonies], clock: Clock, first: Member, second: Member
) -> None:
    ceremonies = make_ceremonies(5)

    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())

    assert ceremony.required_approvals == 2


def test_an_approval_of_an_officer_disabled_since_no_longer_counts(
    ceremonies: KeyCeremonies,
    service: OfficerService,
    clock: Clock,
    first: Member,
    second: Member,
) -> None:
    add_member(service, clock, first, Role.SECURITY_OFFICER, "Mei Security", second)
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())

    service.roster.disable(
        by_officer_id=first.officer.id, officer_id=second.officer.id, now=clock()
    )

    with pytest.raises(ApprovalsMissingError, match="has 1: 1 more"):
        ceremonies.execute(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())


def test_a_rejected_ceremony_is_closed(
    ceremonies: KeyCeremonies, engine: Engine, clock: Clock, first: Member, second: Member
) -> None:
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())

    rejected = ceremonies.reject(
        ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock(), reason="not now"
    )

    assert (rejected.status, rejected.closed_by, rejected.result) == (
        CeremonyStatus.REJECTED,
        second.officer.id,
        "not now",
    )
    with pytest.raises(CeremonyClosedError, match="rejected"):
        ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    with pytest.raises(CeremonyClosedError, match="rejected"):
        ceremonies.execute(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())
    assert audit_actions(engine)[-1] == ("approval.rejected", second.officer.id, "success")


def test_retiring_an_issuing_ca_marks_it_retired_and_the_last_one_cannot_be_retired(
    ceremonies: KeyCeremonies,
    engine: Engine,
    clock: Clock,
    first: Member,
    second: Member,
    issuing: Authority,
) -> None:
    with pytest.raises(InvalidCeremonyError, match="the only active one"):
        ceremonies.propose(officer_id=first.officer.id, kind=RETIRE, target=issuing.id, now=clock())
    with pytest.raises(InvalidCeremonyError, match="name the issuing CA"):
        ceremonies.propose(officer_id=first.officer.id, kind=RETIRE, now=clock())
    rollover = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    ceremonies.approve(ceremony_id=rollover.id, officer_id=second.officer.id, now=clock())
    ceremonies.execute(ceremony_id=rollover.id, officer_id=second.officer.id, now=clock())
    # Two active issuing CAs, as after restoring the earlier one.
    table = certificate_authorities
    with engine.begin() as connection:
        connection.execute(table.update().where(table.c.id == issuing.id).values(status="active"))

    ceremony = ceremonies.propose(
        officer_id=second.officer.id, kind=RETIRE, target=issuing.id, now=clock()
    )
    ceremonies.approve(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())
    retired = ceremonies.execute(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())

    assert retired.status is CeremonyStatus.EXECUTED
    assert retired.result == fingerprint(issuing.certificate)
    assert issuing_rows(engine)[issuing.id] == "retired"
    assert audit_actions(engine)[-1] == ("key.retired", first.officer.id, "success")


def test_concurrent_executes_run_the_ceremony_once(
    ceremonies: KeyCeremonies,
    services: Services,
    engine: Engine,
    clock: Clock,
    first: Member,
    second: Member,
) -> None:
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    labels_before = key_labels(services)
    start = threading.Barrier(2)
    results: list[KeyCeremony | Exception] = []
    now = clock()

    def execute(officer_id: str) -> None:
        start.wait()
        try:
            results.append(
                ceremonies.execute(ceremony_id=ceremony.id, officer_id=officer_id, now=now)
            )
        except Exception as error:  # the test inspects what each thread got
            results.append(error)

    threads = [
        threading.Thread(target=execute, args=(member.officer.id,)) for member in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    executed = [result for result in results if isinstance(result, KeyCeremony)]
    refused = [result for result in results if not isinstance(result, KeyCeremony)]
    assert len(executed) == 1, results
    assert [type(error) for error in refused] == [CeremonyClosedError], refused
    assert len(issuing_rows(engine)) == 2
    made = load_authority(engine, services.token, AuthorityRole.ISSUING)
    responder = load_authority(engine, services.token, AuthorityRole.OCSP)
    assert key_labels(services) - labels_before == {made.key_ref.label, responder.key_ref.label}
    generated = [e for e in events(engine, limit=50) if e.action == "key.generated"]
    assert len(generated) == 1


def test_a_ceremony_that_fails_is_marked_failed_and_leaves_no_half_made_ca(
    ceremonies: KeyCeremonies,
    services: Services,
    engine: Engine,
    clock: Clock,
    first: Member,
    second: Member,
    issuing: Authority,
) -> None:
    ceremony = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    with engine.begin() as connection:
        for statement in REFUSE_RESPONDER[engine.dialect.name]:
            connection.execute(text(statement))
    labels_before = key_labels(services)
    with engine.connect() as connection:
        rows_before = connection.execute(
            select(func.count()).select_from(certificate_authorities)
        ).scalar_one()

    with pytest.raises(CeremonyFailedError, match="recording refused for the test"):
        ceremonies.execute(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())

    failed = ceremonies.ceremony(ceremony.id, now=clock())
    assert failed.status is CeremonyStatus.FAILED
    assert failed.result is not None
    assert "recording refused for the test" in failed.result
    assert key_labels(services) == labels_before
    with engine.connect() as connection:
        rows_after = connection.execute(
            select(func.count()).select_from(certificate_authorities)
        ).scalar_one()
    assert rows_after == rows_before
    assert active_issuing_fingerprint(engine) == fingerprint(issuing.certificate)
    assert audit_actions(engine)[-1] == ("key.generated", first.officer.id, "failure")
    with pytest.raises(CeremonyClosedError, match="failed"):
        ceremonies.execute(ceremony_id=ceremony.id, officer_id=first.officer.id, now=clock())


def test_a_new_ca_ceremony_fails_when_the_issuing_ca_changed_since_its_proposal(
    ceremonies: KeyCeremonies, clock: Clock, first: Member, second: Member
) -> None:
    earlier = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    later = ceremonies.propose(officer_id=first.officer.id, kind=NEW, now=clock())
    for ceremony in (earlier, later):
        ceremonies.approve(ceremony_id=ceremony.id, officer_id=second.officer.id, now=clock())
    ceremonies.execute(ceremony_id=later.id, officer_id=first.officer.id, now=clock())

    with pytest.raises(CeremonyFailedError, match="not the one this change was to replace"):
        ceremonies.execute(ceremony_id=earlier.id, officer_id=first.officer.id, now=clock())

    assert ceremonies.ceremony(earlier.id, now=clock()).status is CeremonyStatus.FAILED
    listed = ceremonies.ceremonies(now=clock())
    assert [(c.id, c.status) for c in listed] == [
        (later.id, CeremonyStatus.EXECUTED),
        (earlier.id, CeremonyStatus.FAILED),
    ]
