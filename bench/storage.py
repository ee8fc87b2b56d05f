"""Issuance throughput on SQLite and PostgreSQL, beside the limits measured in the same run
(issue 6, item 5).

Run by hand (never part of `make test`):

    .venv/bin/python bench/storage.py [--seconds 3] [--postgres-url URL]

One throwaway instance (Settings in a temporary directory, `initialise`) gives the real issuing
CA, its P-256 key in SoftHSM. The same data directory, and so the same token, is initialised a
second time against a throwaway PostgreSQL schema (dropped at the end), so both stores sign with
a key of the same token.

Every configuration (store x number of processes) runs in freshly spawned worker processes,
each with its own engine and its own token session, as `shomei serve` workers have. Each worker
measures three operations, each in a transaction of its own:

- sign: the token's raw signature rate (ECDSA P-256 over the TBS bytes of a real certificate),
  the limit set by the token;
- insert: the database's raw rate of inserting the same certificate row, without signing, the
  limit set by the store;
- issue: `pki.issuance.issue`, which builds, signs in the token and inserts.

The phases run as sign, insert, issue, issue, insert, sign (a round each way), so that a slow
drift of the shared machine's load weighs equally on every phase; a barrier starts each phase
in all processes at once. Figures are reported beside their limits as ratios. SQLite with two
processes is measured too, to show why PostgreSQL is the scale-out store: it is reported, never
judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from hsm import TokenECPrivateKey
from pwa_server.initialise import initialise
from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.runtime import Services, open_services, publication_urls
from pwa_server.settings import Settings
from pwa_server.store.certificates import insert_certificate

SECONDS = 3.0
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Beside this file, wherever it is run from (`make bench` runs it from the repository root).
RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"
# A round each way: linear drift of the machine's load adds the same to every phase's mean.
PHASES = ("sign", "insert", "issue", "issue", "insert", "sign")
OPERATIONS = ("sign", "insert", "issue")
# Generous: a worker's start-up (imports, token login, loading the CAs) takes seconds on a
# loaded machine, and SQLite writers may wait on each other for the busy timeout.
BARRIER_TIMEOUT = 180.0
RESULT_TIMEOUT = 300.0
LIFETIME = dt.timedelta(days=730)


@dataclass(frozen=True)
class Job:
    """What one worker process needs: where the instance is and how long each phase lasts."""

    data_dir: str
    database_url: str | None
    seconds: float


@dataclass(frozen=True)
class Configuration:
    """One measured setup: a store and how many processes issue into it at once."""

    name: str
    store: str
    processes: int
    database_url: str | None


def measure(operation: Callable[[], object], seconds: float) -> dict[str, float]:
    """Run `operation` for `seconds`: completed count, errors, wall and CPU time, latencies.

    OperationalError is counted rather than raised: SQLite writers in two processes may time
    out on the file lock, and how often they do is part of the result.
    """
    latencies: list[float] = []
    errors = 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        began = time.perf_counter()
        try:
            operation()
        except OperationalError:
            errors += 1
            continue
        latencies.append(time.perf_counter() - began)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start
    ordered = sorted(latencies) or [0.0]
    return {
        "count": float(len(latencies)),
        "errors": float(errors),
        "elapsed_s": elapsed,
        # CPU seconds of this process per wall second: near 1.0 means it was bound by its own
        # work, well below means it waited (on the database, a lock or a busy machine).
        "cpu_busy": cpu / elapsed,
        # The process's own CPU per completed operation: unlike rates, barely moved by how
        # much of the shared machine the scheduler gave this process.
        "cpu_ms_per_op": 1000 * cpu / max(len(latencies), 1),
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": 1000 * ordered[-1],
    }


def worker(job: Job, barrier: Barrier, results: Queue[dict[str, Any]]) -> None:
    """One process: open the instance as a server worker does, then run every phase.

    Spawned, never forked: a PKCS#11 session must not cross a fork, and SoftHSM reads
    SOFTHSM2_CONF at its first load, which open_services sets from the settings (the same
    token directory as the parent's).
    """
    try:
        settings = Settings(data_dir=Path(job.data_dir), database_url=job.database_url)
        # retry: SoftHSM may fail to start when two processes initialise it at the same instant.
        services = open_services(settings, retry=True)
        try:
            results.put(_run_phases(services, settings, job, barrier))
        finally:
            services.close()
    except BaseException:
        # The other processes would otherwise wait at the barrier until it times out.
        barrier.abort()
        results.put({"error": traceback.format_exc()})


def _run_phases(
    services: Services, settings: Settings, job: Job, barrier: Barrier
) -> dict[str, Any]:
    """Prepare the three operations on the opened instance, then time each phase."""
    issuing = services.issuing
    urls = publication_urls(settings, issuing)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{os.getpid()}")])
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key()

    def issue_one() -> x509.Certificate:
        with services.engine.begin() as connection:
            certificate, _ = issue(
                connection,
                issuing,
                subject=subject,
                public_key=public_key,
                profile=CertificateProfile.CLIENT,
                now=dt.datetime.now(dt.UTC),
                lifetime=LIFETIME,
                urls=urls,
            )
        return certificate

    # A real certificate: its TBS bytes are what the token signs, its row what is inserted.
    template = issue_one()
    tbs = template.tbs_certificate_bytes
    der = template.public_bytes(Encoding.DER)
    signing_key = issuing.private_key
    # The instance's issuing CA is P-256 (as `shomei init` makes it); the figures say so.
    assert isinstance(signing_key, TokenECPrivateKey)

    def sign_one() -> None:
        signing_key.sign(tbs, ec.ECDSA(hashes.SHA256()))

    def insert_one() -> None:
        # The same row as issue() writes; only the unique columns (serial, fingerprint) change.
        with services.engine.begin() as connection:
            insert_certificate(
                connection,
                issuer_id=issuing.id,
                serial=format(x509.random_serial_number(), "x"),
                profile=CertificateProfile.CLIENT.value,
                subject=template.subject.rfc4514_string(),
                not_before=template.not_valid_before_utc,
                not_after=template.not_valid_after_utc,
                certificate_der=der,
                # As long as a real SHA-256 fingerprint (64 hex digits), and as unique.
                sha256_fingerprint=secrets.token_hex(32),
                created_at=dt.datetime.now(dt.UTC),
            )

    operations: dict[str, Callable[[], object]] = {
        "sign": sign_one,
        "insert": insert_one,
        "issue": issue_one,
    }
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in OPERATIONS}
    for phase in PHASES:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        rounds[phase].append(measure(operations[phase], job.seconds))
    return {"pid": os.getpid(), "rounds": rounds}


def run_configuration(
    configuration: Configuration, data_dir: Path, seconds: float
) -> list[dict[str, Any]]:
    """Spawn the configuration's workers, start their phases together, collect their figures."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(configuration.processes)
    results: Queue[dict[str, Any]] = context.Queue()
    job = Job(str(data_dir), configuration.database_url, seconds)
    processes = [
        context.Process(target=worker, args=(job, barrier, results), name=f"bench-{index}")
        for index in range(configuration.processes)
    ]
    for process in processes:
        process.start()
    collected: list[dict[str, Any]] = []
    try:
        for _ in processes:
            collected.append(results.get(timeout=RESULT_TIMEOUT))
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
    failures = [entry["error"] for entry in collected if "error" in entry]
    if failures:
        raise RuntimeError(f"{configuration.name}: a worker failed:\n" + "\n".join(failures))
    return collected


def summarise(configuration: Configuration, workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate rates (sum over processes of each one's count / its own elapsed time), the
    mean of the two rounds, and the ratios of issuance to its limits."""
    summary: dict[str, Any] = {
        "store": configuration.store,
        "processes": configuration.processes,
    }
    for operation in OPERATIONS:
        per_round = [
            sum(
                worker_figures["rounds"][operation][index]["count"]
                / worker_figures["rounds"][operation][index]["elapsed_s"]
                for worker_figures in workers
            )
            for index in range(PHASES.count(operation))
        ]
        every = [entry for figures in workers for entry in figures["rounds"][operation]]
        summary[f"{operation}_per_s"] = statistics.fmean(per_round)
        summary[f"{operation}_per_s_rounds"] = per_round
        summary[f"{operation}_errors"] = int(sum(entry["errors"] for entry in every))
        summary[f"{operation}_p50_ms"] = statistics.fmean(entry["p50_ms"] for entry in every)
        summary[f"{operation}_p99_ms"] = max(entry["p99_ms"] for entry in every)
        summary[f"{operation}_max_ms"] = max(entry["max_ms"] for entry in every)
        summary[f"{operation}_cpu_ms_per_op"] = statistics.fmean(
            entry["cpu_ms_per_op"] for entry in every
        )
        summary[f"{operation}_cpu_busy_per_process"] = statistics.fmean(
            entry["cpu_busy"] for entry in every
        )
    sign, insert, issued = (summary[f"{name}_per_s"] for name in OPERATIONS)
    # Each issuance signs and then inserts, one after the other in the same process: with no
    # other cost, its rate would be the harmonic combination of the two limits.
    serial_limit = 1 / (1 / sign + 1 / insert)
    summary["serial_limit_per_s"] = serial_limit
    summary["issue_over_sign"] = issued / sign
    summary["issue_over_insert"] = issued / insert
    summary["issue_over_serial_limit"] = issued / serial_limit
    return summary


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A throwaway schema (as tests/conftest.py makes one per test), dropped at the end; yields
    the URL whose connections use it."""
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    """Rates per configuration, issuance as a share of each limit, latency and CPU cost."""
    header = (
        f"{'configuration':14} {'sign/s':>7} {'insert/s':>8} {'issue/s':>7} "
        f"{'iss/sign':>8} {'iss/ins':>7} {'iss/serial':>10} "
        f"{'p50 ms':>6} {'p99 ms':>7} {'max ms':>7} {'cpu ms':>6} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, summary in summaries.items():
        errors = sum(summary[f"{operation}_errors"] for operation in OPERATIONS)
        print(
            f"{name:14} {summary['sign_per_s']:7.0f} {summary['insert_per_s']:8.1f} "
            f"{summary['issue_per_s']:7.1f} {summary['issue_over_sign']:8.3f} "
            f"{summary['issue_over_insert']:7.2f} {summary['issue_over_serial_limit']:10.2f} "
            f"{summary['issue_p50_ms']:6.1f} {summary['issue_p99_ms']:7.1f} "
            f"{summary['issue_max_ms']:7.0f} {summary['issue_cpu_ms_per_op']:6.2f} {errors:6d}"
        )
    print("(latency and cpu ms: of issue, per operation in each process)")


def scale_out(one: dict[str, Any], two: dict[str, Any]) -> dict[str, float]:
    """What a second process adds, for issuance and for each of its limits.

    The token's signatures are bound by CPU alone, so their 2p/1p ratio says how much more
    of the shared machine two processes got than one; issuance's ratio over it is what the
    store let through of that.
    """
    ratios = {
        f"{name}_2p_over_1p": two[f"{name}_per_s"] / one[f"{name}_per_s"] for name in OPERATIONS
    }
    ratios["issue_scale_over_sign_scale"] = ratios["issue_2p_over_1p"] / ratios["sign_2p_over_1p"]
    return ratios


def main() -> None:
    """Measure every configuration, print the table and write bench/results/storage.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="length of each phase")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SHOMEI_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server and database in which a throwaway schema is made",
    )
    arguments = parser.parse_args()
    # Settings read SHOMEI_* variables: one left in the caller's shell (a token label, a PIN,
    # a database URL) would reach the throwaway instance and the spawned workers.
    for key in [key for key in os.environ if key.startswith("SHOMEI_")]:
        del os.environ[key]
    started = time.perf_counter()
    load_before = os.getloadavg()
    directory = Path(tempfile.mkdtemp(prefix="shomei-bench-storage-"))
    summaries: dict[str, dict[str, Any]] = {}
    try:
        now = dt.datetime.now(dt.UTC)
        initialise(Settings(data_dir=directory), now)
        with postgres_schema(arguments.postgres_url) as postgres_url:
            # The same data directory: one token (SoftHSM reads one configuration per process),
            # holding a second CA hierarchy whose rows are in PostgreSQL.
            initialise(Settings(data_dir=directory, database_url=postgres_url), now)
            configurations = [
                Configuration("sqlite 1p", "sqlite", 1, None),
                Configuration("postgresql 1p", "postgresql", 1, postgres_url),
                Configuration("postgresql 2p", "postgresql", 2, postgres_url),
                Configuration("sqlite 2p", "sqlite", 2, None),
            ]
            for configuration in configurations:
                print(f"measuring {configuration.name} ...", file=sys.stderr, flush=True)
                workers = run_configuration(configuration, directory, arguments.seconds)
                summaries[configuration.name] = summarise(configuration, workers)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    figures: dict[str, Any] = {
        "seconds_per_phase": arguments.seconds,
        "phases": list(PHASES),
        "cpus": os.cpu_count(),
        "load_average_1m_before_after": [load_before[0], os.getloadavg()[0]],
        "configurations": summaries,
        "scale_out": {
            "postgresql": scale_out(summaries["postgresql 1p"], summaries["postgresql 2p"]),
            "sqlite": scale_out(summaries["sqlite 1p"], summaries["sqlite 2p"]),
        },
        "run_seconds": time.perf_counter() - started,
    }
    print_table(summaries)
    for store, ratios in figures["scale_out"].items():
        described = ", ".join(f"{name} {value:.2f}" for name, value in ratios.items())
        print(f"scale-out {store}: {described}")
    print(f"run time {figures['run_seconds']:.0f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
