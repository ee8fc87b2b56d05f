"""Changing the issuing CA: a new one, its key made in the token and its certificate signed
by the root, takes over issuance; or an issuing CA that is not the last active one retires.

A retired CA signs no new certificates, but its key stays in the token: it still signs the
CRL of what it issued, and its OCSP responder still answers for those certificates.

Running processes hold the issuing CA in memory (runtime.Services); they compare
`active_issuing_fingerprint` with what they loaded to notice a change cheaply.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, Engine

from hsm import HsmError, KeyRef, Token
from pwa_server.errors import ErrorKind, ShomeiError
from pwa_server.pki.authority import Authority, fingerprint, key_ref_of, load_authority
from pwa_server.pki.hierarchy import ca_name, certify_new_key, record_authority
from pwa_server.store.authorities import (
    AuthorityRow,
    active_authority,
    authorities_with_role,
    authority_by_id,
    count_authorities,
    retire_authority,
    retire_authority_unless_last,
)
from pwa_server.vocabulary import AuthorityRole, AuthorityStatus


class RolloverError(ShomeiError):
    """The issuing CA cannot be changed as asked (the state changed, or it would leave none)."""

    kind = ErrorKind.CONFLICT


@dataclass(frozen=True)
class NewIssuingCa:
    """An issuing CA made by a rollover, with the OCSP responder it certified."""

    authority_id: int
    key_label: str
    fingerprint: str
    certificate: x509.Certificate
    responder_id: int
    responder_key_label: str
    replaced: AuthorityRow | None  # the issuing CA it retired (None: there was none)


@dataclass(frozen=True)
class IssuingGeneration:
    """An issuing CA whose certificates may still be in use, and the responder for them."""

    issuing: Authority
    responder: Authority | None  # None: none was ever made for it
    active: bool


def active_issuing_fingerprint(engine: Engine) -> str | None:
    """The SHA-256 fingerprint of the issuing CA that signs new certificates (None before
    `shomei init`): one indexed query, cheap enough to ask every few seconds."""
    with engine.connect() as connection:
        row = active_authority(connection, AuthorityRole.ISSUING)
    return row.sha256_fingerprint if row is not None else None


def active_issuing_id(connection: Connection) -> int | None:
    """The id of the issuing CA that signs new certificates (None before `shomei init`)."""
    row = active_authority(connection, AuthorityRole.ISSUING)
    return row.id if row is not None else None


def check_replaceable(connection: Connection, replacing: int | None) -> None:
    """Raise RolloverError unless `replacing` is the active issuing CA (None: there is none)."""
    current = active_authority(connection, AuthorityRole.ISSUING)
    current_id = current.id if current is not None else None
    if current_id != replacing:
        raise RolloverError(
            f"the active issuing CA is {_described(current)} now, not the one this change"
            f" was to replace ({replacing if replacing is not None else 'none'})"
        )


def check_retirable(connection: Connection, authority_id: int) -> AuthorityRow:
    """The issuing CA `authority_id`, if it is active and not the last active one."""
    row = authority_by_id(connection, authority_id)
    if row is None or row.role != AuthorityRole.ISSUING:
        raise RolloverError(f"there is no issuing CA {authority_id}")
    if row.status != AuthorityStatus.ACTIVE:
        raise RolloverError(f"issuing CA {authority_id} is {row.status} already")
    if (
        len(
            authorities_with_role(
                connection, AuthorityRole.ISSUING, statuses=(AuthorityStatus.ACTIVE,)
            )
        )
        < 2
    ):
        raise RolloverError(
            f"issuing CA {authority_id} is the only active one: make a new issuing CA instead"
        )
    return row


def retire_issuing_ca(connection: Connection, authority_id: int) -> AuthorityRow:
    """Retire an active issuing CA in the caller's transaction; the newest other active one
    signs new certificates from then on. RolloverError if it would leave none."""
    row = check_retirable(connection, authority_id)
    if not retire_authority_unless_last(connection, authority_id, role=AuthorityRole.ISSUING):
        raise RolloverError(f"issuing CA {authority_id} is retired or the last active one")
    return row


@dataclass
class PendingIssuingCa:
    """A new issuing CA's key and certificate, made but not yet recorded, and the transaction
    that records it (see `new_issuing_ca`)."""

    connection: Connection
    token: Token
    root: Authority
    ref: KeyRef
    certificate: x509.Certificate
    responder_subject: x509.Name
    now: dt.datetime
    made: list[KeyRef] = field(default_factory=list)
    installed: NewIssuingCa | None = None

    def install(self, *, replacing: int | None) -> NewIssuingCa:
        """Record the new CA as the active issuing CA, retire `replacing` (which must be the
        active one now, or None when there is none) and certify an OCSP responder for it."""
        if self.installed is not None:
            raise RolloverError("this issuing CA is installed already")
        connection, now = self.connection, self.now
        check_replaceable(connection, replacing)
        replaced = authority_by_id(connection, replacing) if replacing is not None else None
        issuing_id = record_authority(
            connection,
            name=self.ref.label,
            role=AuthorityRole.ISSUING,
            parent_id=self.root.id,
            ref=self.ref,
            certificate=self.certificate,
            now=now,
        )
        if replacing is not None and not retire_authority(connection, replacing):
            # Only a concurrent change gets here: check_replaceable saw it active.
            raise RolloverError(f"issuing CA {replacing} was retired meanwhile")
        issuing = Authority(
            issuing_id,
            self.ref.label,
            AuthorityRole.ISSUING,
            self.certificate,
            self.token.private_key(self.ref),
        )
        # The responder in use answers for the issuing CA that certified it; the old one
        # stays active to answer for the certificates of the retired CA.
        responder_ref, responder_certificate = certify_new_key(
            self.token,
            role=AuthorityRole.OCSP,
            subject=self.responder_subject,
            parent=issuing,
            now=now,
        )
        self.made.append(responder_ref)
        responder_id = record_authority(
            connection,
            name=responder_ref.label,
            role=AuthorityRole.OCSP,
            parent_id=issuing_id,
            ref=responder_ref,
            certificate=responder_certificate,
            now=now,
        )
        self.installed = NewIssuingCa(
            authority_id=issuing_id,
            key_label=self.ref.label,
            fingerprint=fingerprint(self.certificate),
            certificate=self.certificate,
            responder_id=responder_id,
            responder_key_label=responder_ref.label,
            replaced=replaced,
        )
        return self.installed


@contextlib.contextmanager
def new_issuing_ca(
    engine: Engine, token: Token, *, organization: str, now: dt.datetime
) -> Iterator[PendingIssuingCa]:
    """Make a new issuing CA key in the token and its certificate signed by the active root,
    then open a transaction in which the caller calls `install` and records what else belongs
    to the change (a ceremony's status, audit events).

    All or nothing: if the block raises, the transaction fails to commit, or `install` was
    never called, the transaction is rolled back and every key made is destroyed, so that no
    CA row without a key, nor a key without a CA row, remains.
    """
    root = load_authority(engine, token, AuthorityRole.ROOT)
    with engine.connect() as connection:
        generation = count_authorities(connection, AuthorityRole.ISSUING) + 1
    ref, certificate = certify_new_key(
        token,
        role=AuthorityRole.ISSUING,
        subject=generation_name(organization, AuthorityRole.ISSUING, generation),
        parent=root,
        now=now,
    )
    made = [ref]
    try:
        with engine.begin() as connection:
            pending = PendingIssuingCa(
                connection,
                token,
                root,
                ref,
                certificate,
                generation_name(organization, AuthorityRole.OCSP, generation),
                now,
                made,
            )
            yield pending
            if pending.installed is None:
                raise RolloverError("the new issuing CA was not installed")
    except BaseException as error:
        _destroy(token, made, error)
        raise


def roll_over_issuing_ca(
    engine: Engine,
    token: Token,
    *,
    organization: str,
    replacing: int | None,
    now: dt.datetime,
) -> NewIssuingCa:
    """A new issuing CA replacing `replacing` in one step (outside a ceremony: tests, tools)."""
    with new_issuing_ca(engine, token, organization=organization, now=now) as pending:
        return pending.install(replacing=replacing)


def generation_name(organization: str, role: AuthorityRole, generation: int) -> x509.Name:
    """The subject of a CA or signer made by a rollover: the first generation keeps the plain
    name, later ones add 'G<n>', so that certificates, CRLs and the console tell them apart."""
    name = ca_name(organization, role)
    if generation < 2:
        return name
    common_name = name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name!s} G{generation}"),
        ]
    )


def load_issuing_generations(
    engine: Engine, token: Token, *, now: dt.datetime
) -> list[IssuingGeneration]:
    """Every issuing CA whose certificate is still valid at `now`, active or retired, the one
    in use first, each with the newest active OCSP responder it certified: what CRL and OCSP
    need to keep answering for every certificate still in use."""
    with engine.connect() as connection:
        rows = authorities_with_role(connection, AuthorityRole.ISSUING)
        responders: dict[int | None, AuthorityRow] = {}
        for responder in authorities_with_role(
            connection, AuthorityRole.OCSP, statuses=(AuthorityStatus.ACTIVE,)
        ):
            responders.setdefault(responder.parent_id, responder)  # the newest first
    in_use = next((row.id for row in rows if row.status == AuthorityStatus.ACTIVE), None)
    generations = []
    for row in sorted(rows, key=lambda row: row.id != in_use):
        certificate = x509.load_der_x509_certificate(row.certificate_der)
        if certificate.not_valid_after_utc <= now:
            continue
        responder_row = responders.get(row.id)
        generations.append(
            IssuingGeneration(
                _loaded(token, row),
                _loaded(token, responder_row) if responder_row is not None else None,
                row.status == AuthorityStatus.ACTIVE,
            )
        )
    return generations


def _loaded(token: Token, row: AuthorityRow) -> Authority:
    certificate = x509.load_der_x509_certificate(row.certificate_der)
    return Authority(row.id, row.name, row.role, certificate, token.private_key(key_ref_of(row)))


def _described(row: AuthorityRow | None) -> str:
    return "none" if row is None else f"{row.id} ({row.sha256_fingerprint[:16]})"


def _destroy(token: Token, refs: list[KeyRef], error: BaseException) -> None:
    """Remove the keys of a change that did not happen; one that cannot be removed is named on
    the error, which stays the one the caller sees."""
    for ref in refs:
        try:
            token.destroy_key(ref)
        except HsmError as failure:
            error.add_note(f"key {ref.label!r} could not be destroyed: {failure}")
