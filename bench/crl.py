"""Time and peak memory of a CRL of 10k, 100k and 1M revoked certificates (issue 6, item 4).

Target: 1M entries in at most 10 s and 1.5 GiB. Run with `make bench` or by hand:

    .venv/bin/python -m bench.crl [--sizes 10000,100000] [--methods shomei,builder-list]
                                  [--timeout 900]

By default only the method the server uses (shomei) runs, which takes a few minutes; the
others are there for comparison and run only when --methods names them (builder-chained at 1M
entries takes over ten minutes, and is stopped at --timeout).

One throwaway instance (Settings in a temporary directory, `initialise`) gives the real issuing
CA, whose P-256 key is in SoftHSM. Each size gets its own SQLite database, a copy of the
instance's, with that many revoked certificate rows added by executemany. Every (method, size)
then runs twice, each time in a fresh subprocess, so that one size's figures never include
another's (ru_maxrss only grows):

- timed: seconds for the query, for building and signing, in total, and the process's peak
  RSS (getrusage ru_maxrss), also as it was before the CRL, after opening the services;
- traced: the same work under tracemalloc, for the peak of Python allocations. tracemalloc
  slows allocation-heavy code 2-3x, which is why its run is not the one timed.

Methods:
- shomei: what the server does (current_crl's steps, without storing the CRL): the entries
  streamed from the database into the DER encoder of pwa_server.pki.crl. Query and encoding
  interleave, so its query time is that of a second pass that only reads the same stream;
  build+sign is the total less that.
- shomei-unindexed: the same on a copy of the database without the index that migration 0009
  adds on certificates (issuer_id, status, id): what the index saves (see `_DROP_INDEX`).
- builder-chained: pwa_server.pki.crl.sign_crl before issue 6: the entries as a list, then
  cryptography's CertificateRevocationListBuilder, one add_revoked_certificate per entry.
- builder-list: the same builder given every entry at once through its constructor.
- asn1crypto: asn1crypto's CertificateList (installed with python-pkcs11), from the list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine, insert

from pwa_server.initialise import initialise
from pwa_server.pki.authority import Authority
from pwa_server.pki.crl import CRL_LIFETIME, crl_der
from pwa_server.runtime import open_services
from pwa_server.settings import Settings
from pwa_server.store.certificates import RevokedEntry, revoked_entries, stream_revoked_entries
from pwa_server.store.database import create_database_engine
from pwa_server.store.tables import certificates

SIZES = (10_000, 100_000, 1_000_000)
TARGET_SECONDS = 10.0
TARGET_RSS_MIB = 1536.0
# A mix of reasons: unspecified (no CRLReason extension) and None (no reason kept) included.
_REASONS = (
    "superseded",
    "keyCompromise",
    "unspecified",
    "affiliationChanged",
    "cessationOfOperation",
    "privilegeWithdrawn",
    None,
)
_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_INSERT_CHUNK = 20_000
# Rows as large as real ones (a client certificate of ours is ~450-500 bytes of DER): the
# query reads the table, so its time depends on the size of the rows, not only their number.
_CERTIFICATE_DER = bytes(500)
# Without ix_certificates_issuer_status_id SQLite takes the unique (issuer_id, serial) index,
# fetches every row of the CA by rowid in serial order, then sorts the revoked ones by id in a
# temporary b-tree.
_DROP_INDEX = "DROP INDEX ix_certificates_issuer_status_id"
DEFAULT_METHODS = ("shomei",)


# --- The methods measured ----------------------------------------------------------------

# (database engine, issuing CA, now) -> (CRL DER, query seconds, build+sign seconds)
Run = Callable[[Engine, Authority, dt.datetime], tuple[bytes, float, float]]
Build = Callable[[Authority, list[RevokedEntry], dt.datetime], bytes]


@dataclass(frozen=True)
class Method:
    run: Run
    unindexed: bool = False


def _shomei(engine: Engine, authority: Authority, now: dt.datetime) -> tuple[bytes, float, float]:
    start = time.perf_counter()
    with engine.connect() as connection:
        der = crl_der(
            authority.certificate,
            authority.private_key,
            stream_revoked_entries(connection, authority.id),
            number=1,
            now=now,
        )
    total = time.perf_counter() - start
    start = time.perf_counter()
    with engine.connect() as connection:
        for _ in stream_revoked_entries(connection, authority.id):
            pass
    query = time.perf_counter() - start
    return der, query, total - query


def _from_list(build: Build) -> Run:
    """A method that reads the entries as a list first, as sign_crl's callers did."""

    def run(engine: Engine, authority: Authority, now: dt.datetime) -> tuple[bytes, float, float]:
        start = time.perf_counter()
        with engine.connect() as connection:
            entries = revoked_entries(connection, authority.id)
        queried = time.perf_counter()
        der = build(authority, entries, now)
        return der, queried - start, time.perf_counter() - queried

    return run


_REASON_FLAGS = {flag.value: flag for flag in x509.ReasonFlags}


def _revoked_certificates(entries: list[RevokedEntry]) -> Iterator[x509.RevokedCertificate]:
    for entry in entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(entry.serial, 16))
            .revocation_date(entry.revoked_at)
        )
        reason = _REASON_FLAGS.get(entry.reason or "")
        if reason is not None and reason is not x509.ReasonFlags.unspecified:
            revoked = revoked.add_extension(x509.CRLReason(reason), critical=False)
        yield revoked.build()


def _crl_extensions(authority: Authority) -> list[x509.Extension[x509.ExtensionType]]:
    number = x509.CRLNumber(1)
    key_identifier = x509.AuthorityKeyIdentifier.from_issuer_public_key(
        authority.private_key.public_key()
    )
    return [
        x509.Extension(number.oid, False, number),
        x509.Extension(key_identifier.oid, False, key_identifier),
    ]


def _builder_chained(authority: Authority, entries: list[RevokedEntry], now: dt.datetime) -> bytes:
    """sign_crl before issue 6. The builder is immutable: each add_revoked_certificate copies
    the entries so far, O(n^2)."""
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=authority.certificate.subject,
        last_update=now,
        next_update=now + CRL_LIFETIME,
        extensions=_crl_extensions(authority),
    )
    for revoked in _revoked_certificates(entries):
        builder = builder.add_revoked_certificate(revoked)
    return builder.sign(authority.private_key, hashes.SHA256()).public_bytes(Encoding.DER)


def _builder_list(authority: Authority, entries: list[RevokedEntry], now: dt.datetime) -> bytes:
    """The same builder given every entry at once through its constructor: O(n)."""
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=authority.certificate.subject,
        last_update=now,
        next_update=now + CRL_LIFETIME,
        extensions=_crl_extensions(authority),
        revoked_certificates=list(_revoked_certificates(entries)),
    )
    return builder.sign(authority.private_key, hashes.SHA256()).public_bytes(Encoding.DER)


# asn1crypto's names of the CRLReason values that the database keeps in RFC 5280's spelling.
_ASN1_REASONS = {
    "keyCompromise": "key_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "privilegeWithdrawn": "privilege_withdrawn",
}


def _asn1_time(moment: dt.datetime) -> Any:
    choice = "utc_time" if 1950 <= moment.year < 2050 else "general_time"
    return asn1_x509.Time({choice: moment.replace(microsecond=0)})


def _asn1crypto(authority: Authority, entries: list[RevokedEntry], now: dt.datetime) -> bytes:
    key = authority.private_key
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit("the asn1crypto method signs with the session's EC issuing CA only")
    revoked = []
    for entry in entries:
        item: dict[str, Any] = {
            "user_certificate": int(entry.serial, 16),
            "revocation_date": _asn1_time(entry.revoked_at),
        }
        reason = _ASN1_REASONS.get(entry.reason or "")
        if reason is not None:
            item["crl_entry_extensions"] = [
                {"extn_id": "crl_reason", "critical": False, "extn_value": reason}
            ]
        revoked.append(item)
    key_identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    tbs = asn1_crl.TbsCertList(
        {
            "version": "v2",
            "signature": {"algorithm": "sha256_ecdsa"},
            "issuer": asn1_x509.Name.load(authority.certificate.subject.public_bytes()),
            "this_update": _asn1_time(now),
            "next_update": _asn1_time(now + CRL_LIFETIME),
            "revoked_certificates": revoked,
            "crl_extensions": [
                {"extn_id": "crl_number", "critical": False, "extn_value": 1},
                {
                    "extn_id": "authority_key_identifier",
                    "critical": False,
                    "extn_value": {"key_identifier": key_identifier},
                },
            ],
        }
    )
    signature = key.sign(tbs.dump(), ec.ECDSA(hashes.SHA256()))
    certificate_list = asn1_crl.CertificateList(
        {
            "tbs_cert_list": tbs,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        }
    )
    der: bytes = certificate_list.dump()
    return der


METHODS: dict[str, Method] = {
    "shomei": Method(_shomei),
    "shomei-unindexed": Method(_shomei, unindexed=True),
    "builder-chained": Method(_from_list(_builder_chained)),
    "builder-list": Method(_from_list(_builder_list)),
    "asn1crypto": Method(_from_list(_asn1crypto)),
}


# --- One measurement, in a fresh process --------------------------------------------------


def _max_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(arguments: argparse.Namespace) -> int:
    """One method and size in this process; prints its figures as JSON."""
    settings = Settings(data_dir=arguments.data_dir, database_url=arguments.database_url)
    services = open_services(settings, retry=True)
    try:
        run = METHODS[arguments.method].run
        gc.collect()
        figures: dict[str, Any] = {"rss_before_mib": _max_rss_mib()}
        if arguments.traced:
            tracemalloc.start()
        der, query, build = run(services.engine, services.issuing, _NOW)
        if arguments.traced:
            figures["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        else:
            figures.update(
                query_s=query,
                build_sign_s=build,
                total_s=query + build,
                max_rss_mib=_max_rss_mib(),
            )
        crl = x509.load_der_x509_crl(der)
        if len(crl) != arguments.size or not crl.is_signature_valid(
            services.issuing.private_key.public_key()
        ):
            raise SystemExit(f"{arguments.method}: a wrong CRL of {arguments.size} entries")
        figures["crl_bytes"] = len(der)
    finally:
        services.close()
    print(json.dumps(figures))
    return 0


# --- The databases and the runs -----------------------------------------------------------


def _fill(url: str, issuer_id: int, size: int) -> None:
    """Add `size` revoked certificates of the CA, by executemany in chunks."""
    engine = create_database_engine(url)
    try:
        for first in range(0, size, _INSERT_CHUNK):
            rows = []
            for index in range(first, min(first + _INSERT_CHUNK, size)):
                moment = _START + dt.timedelta(seconds=index, microseconds=index % 1_000_000)
                rows.append(
                    {
                        "issuer_id": issuer_id,
                        "serial": format(x509.random_serial_number(), "x"),
                        "profile": "client",
                        "subject": f"CN=u-{index:016x}",
                        "not_before": moment,
                        "not_after": moment + dt.timedelta(days=730),
                        "certificate_der": _CERTIFICATE_DER,
                        "sha256_fingerprint": format(index, "064x"),
                        "status": "revoked",
                        "revoked_at": moment + dt.timedelta(days=1),
                        "revocation_reason": _REASONS[index % len(_REASONS)],
                        "created_at": moment,
                    }
                )
            with engine.begin() as connection:
                connection.execute(insert(certificates), rows)
    finally:
        engine.dispose()


def _unindexed_copy(database: Path) -> Path:
    copy = database.with_name(f"{database.stem}-unindexed.db")
    shutil.copyfile(database, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute(_DROP_INDEX)
    connection.close()
    return copy


def _run_child(
    directory: Path, database: Path, method: str, size: int, *, traced: bool, timeout: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--data-dir",
        str(directory),
        "--database-url",
        f"sqlite:///{database}",
        "--method",
        method,
        "--size",
        str(size),
    ]
    if traced:
        command.append("--traced")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"timed_out_after_s": timeout}
    if done.returncode != 0:
        raise SystemExit(f"{method} {size}: exit {done.returncode}\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _measure(
    directory: Path, issuer_id: int, size: int, methods: list[str], timeout: float
) -> Iterator[dict[str, Any]]:
    database = directory / f"crl-{size}.db"
    shutil.copyfile(directory / "shomei.db", database)
    _fill(f"sqlite:///{database}", issuer_id, size)
    unindexed = _unindexed_copy(database) if any(METHODS[m].unindexed for m in methods) else None
    try:
        for method in methods:
            used = unindexed if METHODS[method].unindexed and unindexed else database
            row: dict[str, Any] = {"method": method, "entries": size}
            row.update(_run_child(directory, used, method, size, traced=False, timeout=timeout))
            if "timed_out_after_s" not in row:
                traced = _run_child(directory, used, method, size, traced=True, timeout=timeout)
                row["tracemalloc_peak_mib"] = traced.get("tracemalloc_peak_mib")
            yield row
    finally:
        database.unlink()
        if unindexed is not None:
            unindexed.unlink()


_HEADER = (
    f"{'method':16} {'entries':>9} {'query s':>8} {'build+sign s':>12} {'total s':>8}"
    f" {'max RSS MiB':>11} {'at start':>8} {'tracemalloc MiB':>15} {'CRL MiB':>8}"
)


def _line(row: dict[str, Any]) -> str:
    start = f"{row['method']:16} {row['entries']:>9}"
    if "timed_out_after_s" in row:
        return f"{start} timed out after {row['timed_out_after_s']:.0f} s"
    return (
        f"{start} {row['query_s']:8.2f} {row['build_sign_s']:12.2f} {row['total_s']:8.2f}"
        f" {row['max_rss_mib']:11.0f} {row['rss_before_mib']:8.0f}"
        f" {_or_dash(row['tracemalloc_peak_mib'], '15.0f')} {row['crl_bytes'] / 2**20:8.1f}"
    )


def _or_dash(value: float | None, form: str) -> str:
    """The traced run may time out where the timed one did not."""
    return format(value, form) if value is not None else format("-", ">" + form.split(".")[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, of {', '.join(METHODS)} (default: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per subprocess")
    parser.add_argument("--output", type=Path, default=Path("bench/results/crl.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        return child(arguments)

    sizes = [int(size) for size in arguments.sizes.split(",")]
    methods = arguments.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    results: list[dict[str, Any]] = []
    print(_HEADER, flush=True)
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        settings = Settings(data_dir=directory)
        initialise(settings, dt.datetime.now(dt.UTC))
        services = open_services(settings)
        issuer_id = services.issuing.id
        services.close()
        for size in sizes:
            for row in _measure(directory, issuer_id, size, methods, arguments.timeout):
                results.append(row)
                print(_line(row), flush=True)

    output: Path = arguments.output
    output.parent.mkdir(parents=True, exist_ok=True)
    target = {"entries": 1_000_000, "seconds": TARGET_SECONDS, "rss_mib": TARGET_RSS_MIB}
    document = {"target": target, "python": sys.version.split()[0], "results": results}
    output.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
