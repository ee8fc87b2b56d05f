"""Certificate downloads end to end (HTTPS, concurrent phones) against the same primitives
in process, on the same instance, in the same run.

Run with `make bench`, or alone with `.venv/bin/python -m bench.downloads`.

1. A throwaway instance (`shomei init`, then `shomei serve` with its default worker count).
2. Enrollments made ready to download through the domain (invitation, one-time password,
   secret question) in as many processes as there are workers: each costs an Argon2id hash
   of the secret answer, so they are made before anything is timed, and their mails are
   delivered (to .eml files) so that the workers' outbox senders stay idle during the runs.
3. In process, in a spawned process and then in `workers` processes at once: the chain of
   primitives a download is built from (P-256 key, certificate signed in the token by
   pki.issuance with its insert, PKCS#12 with 3DES, and for iOS the profile and its CMS
   signature), and the check of the download password (HMAC-SHA256 in the token), which the
   chain leaves out.
4. End to end: each phone has loaded /download (session cookie, CSRF token) beforehand, as a
   person does before typing; the timed part is the form POST on a new TLS connection, as
   a phone's is after the minutes spent typing (keep-alive ended long before).
   Android and iOS separately, at two concurrencies.
5. The ratio end to end / in process (target >= 0.85), and a py-spy profile of the workers
   during one more run, to say where the difference goes.

The machine is shared: besides downloads per second, each run reports the workers' CPU per
download (which other tenants change little) and how many cores everyone else used meanwhile,
so that a ratio can be read against what the server really had.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12 as cryptography_pkcs12
from cryptography.x509.oid import NameOID

from bench.common import (
    Count,
    CpuShare,
    Instance,
    InstanceConfig,
    PySpy,
    cpu_seconds,
    in_processes,
    latency_summary,
    print_table,
    scrub_environment,
    stopwatch,
    summarise_profile,
    timed,
    total_rate,
    write_results,
)
from pwa_server.enrollment import credentials
from pwa_server.notify.sender import deliver_due
from pwa_server.notify.transports import transport_from_settings
from pwa_server.pki.issuance import issue
from pwa_server.pki.packaging import mobileconfig, pkcs12
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.runtime import enrollment_service, open_services, open_token, secret_hashes
from pwa_server.store.database import create_database_engine

PLATFORMS = ("android", "ios")
CONCURRENCIES = (8, 32)
# 4 runs of 100 plus 40 profiled: 440 enrollments. Each costs one Argon2id hash (the secret
# answer, ~0.2 s of CPU) to prepare: ~45 s of preparation on two free cores. A run of 100
# lasts a couple of seconds, long enough for steady rates.
PER_RUN = 100
PROFILED = 40
SECONDS = 3.0
USER_AGENTS = {
    "ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "android": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/126.0 Mobile",
}
MEDIA_TYPES = {"ios": "application/x-apple-aspen-config", "android": "application/x-pkcs12"}
TARGET_RATIO = 0.85
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')

# What the in-process chain does, as py-spy names it: samples with one of these frames on
# the stack are the chain's; everything else is what end to end adds.
CHAIN_FRAMES = (
    r"^new_private_key \(pwa_server/pki/key_profiles\.py",
    r"^issue \(pwa_server/pki/issuance\.py",
    r"^build_pkcs12 \(",
    r"^build_configuration_profile \(pwa_server/pki/packaging/mobileconfig\.py",
    r"^sign_configuration_profile \(",
)
OWNERS = (
    (
        "background tasks (outbox senders, audit seal, rollover check)",
        (
            r"\(pwa_server/notify/",
            r"\(pwa_server/sites/webhook_delivery\.py",
            r"^_seal_audit_log ",
            r"^_restart_after_rollover ",
        ),
    ),
)
CATEGORIES = (
    (
        "check of the download password (HMAC-SHA256 in the token)",
        (r"\(pwa_server/enrollment/hashing\.py", r"\(hsm/secret_keys\.py"),
    ),
    ("Argon2id (none expected while downloading)", (r"\(argon2/",)),
    ("database (SQLAlchemy, sqlite3; commits wait for fsync)", (r"\(sqlalchemy/", r"\(sqlite3/")),
    ("token signature (PKCS#11, SoftHSM)", (r"\(hsm/", r"\(pkcs11/")),
    ("cryptography (key, certificate, PKCS#12, CMS)", (r"\(cryptography/",)),
    (
        "Shomei domain code (lockout, audit chain, issuance, packaging)",
        (r"\(pwa_server/(enrollment|audit|store|sites|pki)/",),
    ),
    ("TLS (handshake, records)", (r"\(ssl\.py:", r"\(asyncio/sslproto\.py:")),
    (
        "web app (starlette, form parsing, session, templates)",
        (
            r"\(starlette/",
            r"\(multipart/",
            r"\(python_multipart/",
            r"\(pwa_server/web/",
            r"\(jinja2/",
            r"\(itsdangerous/",
            r"\(babel/",
        ),
    ),
    ("HTTP server (uvicorn, httptools)", (r"\(uvicorn/", r"\(httptools/", r"\(pwa_server/serve/")),
    (
        "event loop and thread pool",
        (r"\(asyncio/", r"\(threading\.py:", r"\(anyio/", r"\(concurrent/", r"\(selectors\.py:"),
    ),
)


@dataclass(frozen=True)
class Ready:
    """An enrollment whose download window is open, and the phone session that will use it."""

    certificate_user_id: str
    download_password: str
    cookies: dict[str, str]
    csrf_token: str


# --- in spawned processes ------------------------------------------------------------------


def _prepare(barrier: Barrier, config: InstanceConfig, first: int, count: int) -> list[Any]:
    """Invite, verify the one-time password and register the secret, through the domain;
    then deliver the queued mails (to .eml files). Returns (certificate user ID, password)."""
    settings = config.settings()
    engine = create_database_engine(settings.effective_database_url)
    token = open_token(settings)
    service = enrollment_service(settings, engine, secret_hashes(settings, token))
    ready: list[tuple[str, str]] = []
    try:
        for index in range(first, first + count):
            now = dt.datetime.now(dt.UTC)
            invitation = service.create(
                user_id=f"bench-{index}", email=f"bench{index}@example.jp", now=now
            )
            service.verify_one_time_password(
                invitation.enrollment_id, invitation.one_time_password, now=now
            )
            issued = service.register_secret(
                invitation.enrollment_id,
                question="first-pet",
                answer="Pochi",
                answer_confirm="Pochi",
                now=now,
            )
            ready.append((issued.certificate_user_id, issued.download_password))
        transport = transport_from_settings(settings)
        while asyncio.run(deliver_due(engine, transport, now=dt.datetime.now(dt.UTC), limit=500)):
            pass
    finally:
        token.close()
        engine.dispose()
    return ready


def _primitives(barrier: Barrier, config: InstanceConfig, seconds: float) -> dict[str, Count]:
    """The chain for Android and for iOS, then the download password's check, each for
    `seconds`, in step with the other processes of the same call (the barrier)."""
    services = open_services(config.settings())
    downloads = services.downloads
    policy = downloads.policy
    password = credentials.new_download_password()
    names = (f"shm-p{os.getpid()}x{number}" for number in itertools.count())

    def chain(ios: bool) -> None:
        # The order of Downloads.download: the key outside the transaction; the
        # certificate, its row and the packaging inside it (SQLite's write lock is held
        # while packaging, so this is also what the workers contend for).
        name = next(names)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        with services.engine.begin() as connection:
            certificate, _ = issue(
                connection,
                services.issuing,
                subject=x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, policy.organization),
                        x509.NameAttribute(NameOID.COMMON_NAME, name),
                    ]
                ),
                public_key=key.public_key(),
                profile=CertificateProfile.CLIENT,
                now=now,
                lifetime=policy.validity,
                urls=downloads.issuance.urls,
            )
            p12 = pkcs12.build_pkcs12(
                private_key=key,
                certificate=certificate,
                chain=[services.issuing.certificate],
                password=password,
                friendly_name=name,
                phone_compatible=True,
            )
            if ios:
                profile = mobileconfig.build_configuration_profile(
                    pkcs12=p12,
                    root=services.root.certificate,
                    certificate_user_id=name,
                    organization=policy.organization,
                    identifier_prefix=downloads.identifier_prefix,
                )
                mobileconfig.sign_configuration_profile(
                    profile,
                    certificate=downloads.signing.certificate,
                    private_key=downloads.signing.private_key,
                    chain=downloads.signing.chain,
                )

    stored = downloads.hashes.keyed(password)
    try:
        return {
            "android": timed(barrier, lambda: chain(False), seconds),
            "ios": timed(barrier, lambda: chain(True), seconds),
            "password_check": timed(
                barrier, lambda: downloads.hashes.verify(stored, password), seconds
            ),
        }
    finally:
        services.close()


# --- end to end ------------------------------------------------------------------------------


def _open_sessions(instance: Instance, made: Sequence[tuple[str, str]]) -> list[Ready]:
    """Each phone loads /download once: its own session cookie and CSRF token."""
    ready: list[Ready] = []
    with httpx.Client(
        base_url=instance.base_url, verify=instance.ssl_context(), timeout=30
    ) as client:
        for certificate_user_id, password in made:
            client.cookies.clear()
            page = client.get("/download")
            found = _CSRF.search(page.text)
            if page.status_code != 200 or found is None:
                raise RuntimeError(f"/download answered {page.status_code} without a form")
            ready.append(
                Ready(certificate_user_id, password, dict(client.cookies.items()), found.group(1))
            )
    return ready


@dataclass(frozen=True)
class Outcome:
    status: int
    media_type: str
    content: bytes
    seconds: float


async def _download_all(
    instance: Instance, phones: Sequence[Ready], platform: str, concurrency: int
) -> tuple[list[Outcome], float]:
    """POST /download for every phone, `concurrency` at a time; each on its own connection."""
    context = instance.ssl_context()
    gate = asyncio.Semaphore(concurrency)

    async def one(phone: Ready) -> Outcome:
        async with (
            gate,
            httpx.AsyncClient(
                base_url=instance.base_url,
                verify=context,
                cookies=phone.cookies,
                headers={"user-agent": USER_AGENTS[platform]},
                timeout=300,
            ) as client,
        ):
            start = time.perf_counter()
            response = await client.post(
                "/download",
                data={
                    "csrf_token": phone.csrf_token,
                    "certificate_user_id": phone.certificate_user_id,
                    "download_password": phone.download_password,
                    "platform": platform,
                },
            )
            seconds = time.perf_counter() - start
        return Outcome(
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
            seconds,
        )

    start = time.perf_counter()
    outcomes = await asyncio.gather(*(one(phone) for phone in phones))
    return list(outcomes), time.perf_counter() - start


def _check(outcomes: Sequence[Outcome], phones: Sequence[Ready], platform: str) -> None:
    """Every download delivered its file; the first one opens with its password."""
    failed = [outcome.status for outcome in outcomes if outcome.status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} downloads failed: statuses {sorted(set(failed))}")
    for outcome in outcomes:
        if not outcome.media_type.startswith(MEDIA_TYPES[platform]):
            raise RuntimeError(f"a {platform} download came as {outcome.media_type}")
    first = outcomes[0].content
    if platform == "android":
        key, certificate, _ = cryptography_pkcs12.load_key_and_certificates(
            first, phones[0].download_password.encode()
        )
        if key is None or certificate is None:
            raise RuntimeError("the PKCS#12 holds no key or certificate")
    elif not first.startswith(b"\x30\x82"):
        raise RuntimeError("the profile is not DER CMS")


def _run(
    instance: Instance,
    phones: Sequence[Ready],
    platform: str,
    concurrency: int,
    limits: dict[str, float],
) -> dict[str, Any]:
    """One timed run: rate, latencies, the CPU it took, and its ratios to the limits."""
    workers = instance.worker_pids()
    server_cpu = cpu_seconds(workers)
    client_cpu = time.process_time()
    with CpuShare(workers) as share:
        outcomes, wall = asyncio.run(_download_all(instance, phones, platform, concurrency))
    client_cpu = time.process_time() - client_cpu
    server_cpu = cpu_seconds(workers) - server_cpu
    _check(outcomes, phones, platform)
    rate = len(outcomes) / wall
    server_ms = server_cpu / len(outcomes) * 1000
    usable = min(instance.config.workers, os.cpu_count() or 1)
    chain_ms = limits[f"chain_{platform}_cpu_ms"]
    return {
        "downloads": len(outcomes),
        "downloads_per_s": rate,
        **latency_summary([outcome.seconds for outcome in outcomes]),
        # Cores the workers kept busy, of the machine's os.cpu_count(): the limit they hit.
        "server_cores_busy": server_cpu / wall,
        "server_cpu_ms_per_download": server_ms,
        "client_cpu_ms_per_download": client_cpu / len(outcomes) * 1000,
        # What the workers could do if they had the cores to themselves: CPU per download
        # moves less with the machine's noise than downloads per second do.
        f"cpu_bound_per_s_on_{usable}_free_cores": usable * 1000 / server_ms,
        "ratio_to_chain": rate / limits[f"chain_{platform}_per_s"],
        "ratio_to_chain_plus_check": rate / limits[f"chain_{platform}_plus_check_per_s"],
        "chain_share_of_server_cpu": chain_ms / server_ms,
        "chain_plus_check_share_of_server_cpu": (chain_ms + limits["password_check_cpu_ms"])
        / server_ms,
        "machine": share.figures,
    }


def _in_process(config: InstanceConfig, seconds: float) -> dict[str, Any]:
    """The primitives' rates in one process and in `workers` processes at once."""
    with CpuShare() as alone:
        single = in_processes(_primitives, [(config, seconds)])[0]
    with CpuShare() as side_by_side:
        together = in_processes(_primitives, [(config, seconds)] * config.workers)
    figures: dict[str, Any] = {
        "machine_1_process": alone.figures,
        f"machine_{config.workers}_processes": side_by_side.figures,
    }
    for name in ("android", "ios", "password_check"):
        label = name if name == "password_check" else f"chain_{name}"
        figures[f"{label}_per_s_1_process"] = single[name].rate
        figures[f"{label}_per_s_{config.workers}_processes"] = total_rate(
            [counts[name] for counts in together]
        )
        # CPU per operation over every process that ran it: the machine's noise moves it
        # less than the rates, and more operations make it steadier.
        counts = [single[name], *(each[name] for each in together)]
        figures[f"{label}_cpu_ms_each"] = (
            sum(count.cpu_seconds for count in counts)
            / sum(count.operations for count in counts)
            * 1000
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.downloads", description=__doc__)
    parser.add_argument("--per-run", type=int, default=PER_RUN, help="downloads in each run")
    parser.add_argument("--profiled", type=int, default=PROFILED, help="downloads profiled")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="per in-process figure")
    arguments = parser.parse_args(argv)
    scrub_environment()
    figures: dict[str, Any] = {"machine_cores": os.cpu_count()}
    with stopwatch(figures), Instance("downloads") as instance:
        config = instance.config
        instance.init()
        figures["workers"] = config.workers
        runs = [(p, c) for p in PLATFORMS for c in CONCURRENCIES]
        needed = arguments.per_run * len(runs) + arguments.profiled
        figures["enrollments"] = needed

        start = time.perf_counter()
        share = -(-needed // config.workers)
        batches = in_processes(
            _prepare,
            [(config, first, min(share, needed - first)) for first in range(0, needed, share)],
        )
        made = [tuple(item) for batch in batches for item in batch]
        figures["prepare_seconds"] = round(time.perf_counter() - start, 1)

        primitives = _in_process(config, arguments.seconds)
        figures["in_process"] = primitives
        workers = config.workers
        limits: dict[str, float] = {
            "password_check_cpu_ms": primitives["password_check_cpu_ms_each"],
        }
        for platform in PLATFORMS:
            chain = primitives[f"chain_{platform}_per_s_{workers}_processes"]
            check = primitives[f"password_check_per_s_{workers}_processes"]
            limits[f"chain_{platform}_per_s"] = chain
            # Both on the same cores one after the other: their times per download add up.
            limits[f"chain_{platform}_plus_check_per_s"] = 1 / (1 / chain + 1 / check)
            limits[f"chain_{platform}_cpu_ms"] = primitives[f"chain_{platform}_cpu_ms_each"]
        figures["limits"] = limits

        instance.start()
        phones = _open_sessions(instance, [(str(a), str(b)) for a, b in made])
        end_to_end: dict[str, Any] = {}
        position = 0
        for platform, concurrency in runs:
            batch = phones[position : position + arguments.per_run]
            position += arguments.per_run
            end_to_end[f"{platform}_c{concurrency}"] = _run(
                instance, batch, platform, concurrency, limits
            )
        figures["end_to_end"] = end_to_end
        # The better concurrency of each platform: what the server reaches when loaded enough.
        best = {
            platform: max(
                (end_to_end[f"{platform}_c{c}"] for c in CONCURRENCIES),
                key=lambda run: float(run["downloads_per_s"]),
            )
            for platform in PLATFORMS
        }
        figures["summary"] = {
            **{
                f"{platform}_ratio_end_to_end_to_chain": run["ratio_to_chain"]
                for platform, run in best.items()
            },
            **{
                f"{platform}_chain_share_of_server_cpu": run["chain_share_of_server_cpu"]
                for platform, run in best.items()
            },
            **{
                f"{platform}_chain_plus_check_share_of_server_cpu": run[
                    "chain_plus_check_share_of_server_cpu"
                ]
                for platform, run in best.items()
            },
            "target_ratio": TARGET_RATIO,
            "target_met": all(run["ratio_to_chain"] >= TARGET_RATIO for run in best.values()),
        }

        # The profile: one more run (iOS, the longer chain), py-spy on the serve process
        # and its workers.
        assert instance.process is not None
        spy = PySpy(instance.process.pid, instance.log.with_name("downloads.pyspy.txt"))
        profiled = phones[position : position + arguments.profiled]
        profiled_run = _run(instance, profiled, "ios", CONCURRENCIES[0], limits)
        stacks = spy.stop()
        figures["profile"] = {
            "run": f"ios, {len(profiled)} downloads at concurrency {CONCURRENCIES[0]}",
            "downloads_per_s_while_profiled": profiled_run["downloads_per_s"],
            **(
                summarise_profile(stacks, chain=CHAIN_FRAMES, owners=OWNERS, categories=CATEGORIES)
                if stacks
                else {"error": spy.error}
            ),
        }
    print_table("downloads: end to end (HTTPS) against the in-process chain", figures)
    print(f"\nwritten to {write_results('downloads', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
