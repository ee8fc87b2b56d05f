"""OCSP over plain HTTP against a real `shomei serve`, with the load made by separate processes,
beside the limits measured in the same run.

Run with `make bench`, or alone with `.venv/bin/python -m bench.ocsp`.

- Reused responses: GET /pki/ocsp/<base64 request without nonce>, which each worker signs
  once per status and then serves from memory, before routing, for up to STATUS_RECHECK
  between two reads of the status (pwa_server/web/middleware/recent_ocsp.py). Saturation throughput
  from Debian's `wrk`; the latency at a fixed 1,000/s from a paced generator of ours in its
  own process, because
  wrk cannot pace (wrk2, which can, is not in Debian): it sends on a fixed schedule whatever
  the answers do and measures each latency from the request's scheduled time, so a stalled
  server shows as latency, not as fewer requests (no coordinated omission).
- Fresh responses: POST with a nonce, signed for every request (never cached).
- The limits beside them: the same server's rate for /pki/issuing.crt (the same listener,
  middleware and routing with no work behind it), the token's raw P-256 signature rate with
  the responder key, and OcspResponders.respond in process; each in one process and in as
  many at once as the server has workers.
- A py-spy profile of the workers under each load, to say what limits it.

Targets: reused >= 5,000 responses/s; p99 < 20 ms at 1,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
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
from hsm import TokenECPrivateKey
from pwa_server.pki.issuance import issue
from pwa_server.pki.profiles import CertificateProfile
from pwa_server.runtime import open_services

CERTIFICATES = 4
SECONDS = 3.0  # each in-process figure
WRK_SECONDS = 4  # each of ROUNDS rounds
ROUNDS = 3
PROFILE_SECONDS = 6
WRK_CONNECTIONS = 32
PACED_RATE = 1000
PACED_SECONDS = 10.0
PACED_CONNECTIONS = 32
TARGET_REUSED_PER_S = 5000
TARGET_P99_MS = 20.0

# What OcspResponders.respond does is the in-process figure; the rest is what HTTP adds.
CHAIN_FRAMES = (r"^OcspResponders\.(respond|recent) \(",)
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
    ("token signature (PKCS#11, SoftHSM)", (r"\(hsm/", r"\(pkcs11/")),
    ("database status lookup (SQLAlchemy, sqlite3)", (r"\(sqlalchemy/", r"\(sqlite3/")),
    (
        "OCSP parse, cache and build (cryptography)",
        (r"\(cryptography/", r"\(pwa_server/pki/ocsp\.py"),
    ),
    (
        # run_in_threadpool: anyio hands the call to a pool thread (queue, Condition.notify)
        # and the loop is woken when it is done (the self-pipe of call_soon_threadsafe).
        "thread-pool hop (anyio, starlette.concurrency)",
        (
            r"\(anyio/",
            r"\(starlette/concurrency\.py",
            r"^Condition\.notify \(threading\.py",
            r"^BaseSelectorEventLoop\.(_write_to_self|_read_from_self) ",
        ),
    ),
    ("web app (starlette routing, middleware)", (r"\(starlette/", r"\(pwa_server/web/")),
    ("HTTP server (uvicorn, httptools)", (r"\(uvicorn/", r"\(httptools/", r"\(pwa_server/serve/")),
    (
        "event loop and threads",
        (r"\(asyncio/", r"\(threading\.py:", r"\(concurrent/", r"\(selectors\.py:"),
    ),
)


# --- in spawned processes ------------------------------------------------------------------


def _issue(barrier: Barrier, config: InstanceConfig, count: int) -> dict[str, Any]:
    """`count` client certificates through pki.issuance (recorded, so OCSP says good), with
    the issuing CA's and the responder's certificates, all DER."""
    services = open_services(config.settings())
    try:
        issued = []
        for number in range(count):
            key = ec.generate_private_key(ec.SECP256R1())
            with services.engine.begin() as connection:
                certificate, _ = issue(
                    connection,
                    services.issuing,
                    subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ocsp-{number}")]),
                    public_key=key.public_key(),
                    profile=CertificateProfile.CLIENT,
                    now=dt.datetime.now(dt.UTC),
                    lifetime=dt.timedelta(days=730),
                )
            issued.append(certificate.public_bytes(Encoding.DER))
        return {
            "certificates": issued,
            "issuing": services.issuing.certificate.public_bytes(Encoding.DER),
            "responder": services.ocsp.responder.certificate.public_bytes(Encoding.DER),
        }
    finally:
        services.close()


def _in_process(
    barrier: Barrier, config: InstanceConfig, seconds: float, reused: bytes, fresh: bytes
) -> dict[str, Count]:
    """The token's raw signature with the responder key, then OcspResponders.respond for a
    request without nonce (reused after the first) and with one (signed each time)."""
    services = open_services(config.settings())
    try:
        key = services.ocsp.responder.private_key
        assert isinstance(key, TokenECPrivateKey)
        digest = os.urandom(64)
        respond = services.ocsp.respond
        return {
            "token_signature": timed(
                barrier, lambda: key.sign(digest, ec.ECDSA(hashes.SHA256())), seconds
            ),
            "respond_reused": timed(barrier, lambda: respond(reused, now=services.now()), seconds),
            "respond_fresh": timed(barrier, lambda: respond(fresh, now=services.now()), seconds),
        }
    finally:
        services.close()


def _paced(
    barrier: Barrier,
    port: int,
    requests: list[bytes],
    rate: float,
    seconds: float,
    connections: int,
) -> dict[str, Any]:
    """Send `requests` in turn at `rate` per second for `seconds` over keep-alive connections.

    Open loop: request i is due at start + i / rate, and its latency runs from then, so a
    request that waits for a free connection or a slow answer counts its wait. Raw asyncio
    streams rather than httpx: at 1,000/s this process shares the two cores with the server,
    and httpx would cost several times the CPU per request.
    """
    return asyncio.run(_paced_load(port, requests, rate, seconds, connections))


async def _paced_load(
    port: int, requests: list[bytes], rate: float, seconds: float, connections: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (item := await due.get()) is not None:
                index, scheduled = item
                writer.write(requests[index % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(loop.time() - scheduled)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    senders = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.sleep(0.5)  # every connection open before the first request is due
    total = int(rate * seconds)
    cpu = time.process_time()
    start = loop.time()
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait((index, scheduled))
    for _ in senders:
        due.put_nowait(None)
    await asyncio.gather(*senders)
    elapsed = loop.time() - start
    return {
        "target_per_s": rate,
        "achieved_per_s": len(latencies) / elapsed,
        "statuses": {str(status): count for status, count in statuses.items()},
        **latency_summary(latencies),
        "generator_cores_busy": (time.process_time() - cpu) / elapsed,
    }


# --- requests and wrk ------------------------------------------------------------------------


def _requests(
    issued: dict[str, Any],
) -> tuple[list[bytes], list[bytes]]:
    """DER OCSP requests (SHA-1 CertIDs, as clients send them) for every certificate:
    without nonce, and with a nonce of 16 random bytes."""
    issuer = x509.load_der_x509_certificate(issued["issuing"])
    plain: list[bytes] = []
    with_nonce: list[bytes] = []
    for der in issued["certificates"]:
        builder = ocsp.OCSPRequestBuilder().add_certificate(
            x509.load_der_x509_certificate(der),
            issuer,
            hashes.SHA1(),  # noqa: S303 - RFC 5019 clients identify certificates with SHA-1
        )
        plain.append(builder.build().public_bytes(Encoding.DER))
        nonce = x509.OCSPNonce(os.urandom(16))
        with_nonce.append(
            builder.add_extension(nonce, critical=False).build().public_bytes(Encoding.DER)
        )
    return plain, with_nonce


def _get_path(request: bytes) -> str:
    """RFC 6960 A.1: the base64 of the DER request, URL-encoded, after the responder's URL."""
    return "/pki/ocsp/" + quote(base64.b64encode(request).decode(), safe="")


def _check_responses(
    instance: Instance, issued: dict[str, Any], plain: list[bytes], with_nonce: list[bytes]
) -> None:
    """Before timing: GETs answer good, signed by the responder, and the same bytes twice
    (reused); POSTs echo their nonce and are signed anew."""
    responder = x509.load_der_x509_certificate(issued["responder"]).public_key()
    assert isinstance(responder, ec.EllipticCurvePublicKey)

    def verified(content: bytes) -> ocsp.OCSPResponse:
        response = ocsp.load_der_ocsp_response(content)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise RuntimeError(f"OCSP answered {response.response_status}")
        if response.certificate_status is not ocsp.OCSPCertStatus.GOOD:
            raise RuntimeError(f"OCSP says {response.certificate_status}")
        algorithm = response.signature_hash_algorithm
        assert algorithm is not None
        responder.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        return response

    with httpx.Client(base_url=instance.plain_url, timeout=30) as client:
        for request in plain:
            first = client.get(_get_path(request))
            verified(first.content)
            if client.get(_get_path(request)).content != first.content:
                raise RuntimeError("a request without nonce was signed anew: no reuse")
        headers = {"content-type": "application/ocsp-request"}
        for request in with_nonce:
            answers = [client.post("/pki/ocsp", content=request, headers=headers) for _ in (1, 2)]
            nonce = ocsp.load_der_ocsp_request(request).extensions.get_extension_for_class(
                x509.OCSPNonce
            )
            for answer in answers:
                echoed = verified(answer.content).extensions.get_extension_for_class(x509.OCSPNonce)
                if echoed.value != nonce.value:
                    raise RuntimeError("the response does not carry the request's nonce")
            if answers[0].content == answers[1].content:
                raise RuntimeError("a request with a nonce got a reused response")


# wrk's own Lua: `request` returns each request in turn; `done` prints the figures as JSON.
_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %.0f, "duration_us": %.0f, "connect_errors": %.0f, ' ..
    '"read_errors": %.0f, "write_errors": %.0f, "status_errors": %.0f, "timeouts": %.0f, ' ..
    '"p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _wrk_script(directory: Path, name: str, method: str, items: Sequence[str | bytes]) -> Path:
    """A wrk script that sends GET paths (str) or POST bodies (bytes, read from files) in turn."""
    lines = ["local i = 0", "local items = {}"]
    for number, item in enumerate(items):
        if isinstance(item, bytes):
            body = directory / f"{name}-{number}.der"
            body.write_bytes(item)
            lines.append(f'items[{number + 1}] = assert(io.open("{body}", "rb")):read("*a")')
        else:
            lines.append(f'items[{number + 1}] = "{item}"')
    if method == "GET":
        send = 'return wrk.format("GET", items[i])'
    else:
        send = (
            'return wrk.format("POST", "/pki/ocsp", '
            '{["Content-Type"] = "application/ocsp-request"}, items[i])'
        )
    lines += [
        "request = function()",
        f"  i = i % {len(items)} + 1",
        f"  {send}",
        "end",
        _WRK_DONE,
    ]
    script = directory / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def _wrk(
    instance: Instance, script: Path, seconds: int = WRK_SECONDS, connections: int = WRK_CONNECTIONS
) -> dict[str, Any]:
    """wrk at saturation (one thread, `connections` keep-alive connections), with the CPU it
    and the workers used: on 2 cores, load generator and server share the machine."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (make bench installs Debian's wrk)")
    command = [
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--script",
        str(script),
        instance.plain_url + "/pki/issuing.crt",
    ]
    workers = instance.worker_pids()
    server_cpu = cpu_seconds(workers)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with CpuShare(workers) as share:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = cpu_seconds(workers) - server_cpu
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {result.stdout}{result.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(raw[name] for name in raw if name.endswith("_errors") or name == "timeouts")
    if errors:
        raise RuntimeError(f"wrk saw errors: {raw}")
    duration = raw["duration_us"] / 1e6
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "per_s": raw["requests"] / duration,
        "requests": raw["requests"],
        "server_cpu_s": server_cpu,
        "connections": connections,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "server_cores_busy": server_cpu / duration,
        "wrk_cores_busy": wrk_cpu / duration,
        "machine": share.figures,
        "command": " ".join([Path(wrk).name, *command[1:]]),
    }


def _profiled(instance: Instance, script: Path, name: str, *, gil: bool) -> dict[str, Any]:
    """py-spy on the workers while wrk saturates them with `script` (a run of its own)."""
    assert instance.process is not None
    output = instance.log.with_name(f"ocsp-{name}-{'gil' if gil else 'all'}.pyspy.txt")
    spy = PySpy(instance.process.pid, output, gil=gil)
    load = _wrk(instance, script, seconds=PROFILE_SECONDS)
    stacks = spy.stop()
    if not stacks:
        return {"error": spy.error}
    return {
        "per_s_while_profiled": load["per_s"],
        **summarise_profile(stacks, chain=CHAIN_FRAMES, owners=OWNERS, categories=CATEGORIES),
    }


def _rounds(instance: Instance, scripts: dict[str, Path], rounds: int) -> dict[str, Any]:
    """Each load in turn, `rounds` times over: whatever else the shared machine runs falls on
    all of them alike, and every ratio is taken within a round, then the median."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in scripts}
    for _ in range(rounds):
        for name, script in scripts.items():
            runs[name].append(_wrk(instance, script))
    usable = min(instance.config.workers, os.cpu_count() or 1)
    summary: dict[str, Any] = {}
    for name, results in runs.items():
        cpu_ms = sum(r["server_cpu_s"] for r in results) / sum(r["requests"] for r in results)
        summary[name] = {
            "per_s": median(r["per_s"] for r in results),
            "per_s_rounds": [round(r["per_s"]) for r in results],
            "p50_ms": median(r["p50_ms"] for r in results),
            "p99_ms": median(r["p99_ms"] for r in results),
            "server_cores_busy": median(r["server_cores_busy"] for r in results),
            "wrk_cores_busy": median(r["wrk_cores_busy"] for r in results),
            "others_cores_busy": median(r["machine"]["others_cores_busy"] for r in results),
            # CPU per request is what noise changes least: the other processes on the
            # machine take cores away, not add work to each request.
            "server_cpu_ms_per_request": cpu_ms * 1000,
            f"cpu_bound_per_s_on_{usable}_free_cores": usable / cpu_ms,
            "connections": results[0]["connections"],
            "command": results[0]["command"],
        }
    for name in scripts:
        if name == "static_issuing_crt":
            continue
        summary[name]["ratio_to_static"] = median(
            run["per_s"] / static["per_s"]
            for run, static in zip(runs[name], runs["static_issuing_crt"], strict=True)
        )
    return summary


def _paced_run(
    instance: Instance, requests: list[bytes], rate: float, connections: int = PACED_CONNECTIONS
) -> dict[str, Any]:
    """The paced generator in a process of its own, with the CPU the workers used meanwhile."""
    workers = instance.worker_pids()
    server_cpu = cpu_seconds(workers)
    with CpuShare(workers) as share:
        result = in_processes(
            _paced, [(instance.config.http_port, requests, rate, PACED_SECONDS, connections)]
        )[0]
    result["server_cores_busy"] = (cpu_seconds(workers) - server_cpu) / PACED_SECONDS
    result["connections"] = connections
    result["machine"] = share.figures
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ocsp", description=__doc__)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="per in-process figure")
    parser.add_argument("--rate", type=float, default=PACED_RATE, help="paced requests/s")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of wrk loads")
    arguments = parser.parse_args(argv)
    scrub_environment()
    figures: dict[str, Any] = {"machine_cores": os.cpu_count()}
    with (
        stopwatch(figures),
        Instance("ocsp") as instance,
        tempfile.TemporaryDirectory() as scratch,
    ):
        directory = Path(scratch)
        config = instance.config
        workers = config.workers
        instance.init()
        figures["workers"] = workers
        issued = in_processes(_issue, [(config, CERTIFICATES)])[0]
        plain, with_nonce = _requests(issued)

        # The limits in process, before the server runs, so that it takes no core from them.
        arguments_in_process = (config, arguments.seconds, plain[0], with_nonce[0])
        with CpuShare() as alone:
            single = in_processes(_in_process, [arguments_in_process])[0]
        with CpuShare() as side_by_side:
            together = in_processes(_in_process, [arguments_in_process] * workers)
        limits: dict[str, Any] = {
            "machine_1_process": alone.figures,
            f"machine_{workers}_processes": side_by_side.figures,
        }
        for name in ("token_signature", "respond_reused", "respond_fresh"):
            limits[f"{name}_per_s_1_process"] = single[name].rate
            limits[f"{name}_per_s_{workers}_processes"] = total_rate(
                [counts[name] for counts in together]
            )
            # CPU per operation over every process that ran it (steadier than the rates).
            counts = [single[name], *(each[name] for each in together)]
            limits[f"{name}_cpu_ms_each"] = (
                sum(count.cpu_seconds for count in counts)
                / sum(count.operations for count in counts)
                * 1000
            )
        figures["in_process"] = limits

        instance.start()
        _check_responses(instance, issued, plain, with_nonce)
        scripts = {
            "static_issuing_crt": _wrk_script(directory, "static", "GET", ["/pki/issuing.crt"]),
            "reused_get": _wrk_script(directory, "reused", "GET", [_get_path(r) for r in plain]),
            "fresh_post": _wrk_script(directory, "fresh", "POST", with_nonce),
        }
        http = _rounds(instance, scripts, arguments.rounds)
        # One keep-alive connection, one request at a time: the latency of a response when
        # nothing queues. A stall per response (a TCP delayed ACK meeting Nagle's algorithm
        # costs 40 ms) shows here as a rate near 25/s, where concurrency would hide it.
        one = _wrk(instance, scripts["static_issuing_crt"], seconds=3, connections=1)
        http["static_issuing_crt_one_connection"] = {
            key: one[key] for key in ("per_s", "p50_ms", "p99_ms", "server_cores_busy", "command")
        }
        reused_rate = http["reused_get"]["per_s"]
        host = f"127.0.0.1:{config.http_port}"
        get_requests = [
            f"GET {_get_path(r)} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for r in plain
        ]
        post_requests = [
            (
                f"POST /pki/ocsp HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/ocsp-request\r\nContent-Length: {len(r)}\r\n\r\n"
            ).encode()
            + r
            for r in with_nonce
        ]
        http["reused_get_paced"] = _paced_run(instance, get_requests, arguments.rate)
        # And at half the saturation rate measured just before: on a machine that gives the
        # server less than 1,000/s, the fixed rate only measures a growing queue, while this
        # says what a loaded but not overloaded responder answers in.
        http["reused_get_paced_half_saturation"] = _paced_run(
            instance, get_requests, round(reused_rate / 2)
        )
        # Fresh responses paced at half their saturation rate: the latency of a loaded
        # but not overloaded responder.
        http["fresh_post_paced"] = _paced_run(
            instance, post_requests, round(http["fresh_post"]["per_s"] / 2)
        )
        figures["http"] = http

        reused, fresh = http["reused_get"], http["fresh_post"]
        figures["ratios"] = {
            "reused_get_to_static": reused["ratio_to_static"],
            "reused_get_to_respond_reused_in_process": reused["per_s"]
            / limits[f"respond_reused_per_s_{workers}_processes"],
            "fresh_post_to_token_signature": fresh["per_s"]
            / limits[f"token_signature_per_s_{workers}_processes"],
            "fresh_post_to_respond_fresh_in_process": fresh["per_s"]
            / limits[f"respond_fresh_per_s_{workers}_processes"],
            # The same comparisons by CPU per request, which the machine's noise moves less:
            # the share of a request's server CPU that the in-process work accounts for.
            "reused_get_cpu_in_responder": limits["respond_reused_cpu_ms_each"]
            / reused["server_cpu_ms_per_request"],
            "fresh_post_cpu_in_responder": limits["respond_fresh_cpu_ms_each"]
            / fresh["server_cpu_ms_per_request"],
            "fresh_post_cpu_in_token_signature": limits["token_signature_cpu_ms_each"]
            / fresh["server_cpu_ms_per_request"],
        }
        figures["targets"] = {
            "reused_per_s": TARGET_REUSED_PER_S,
            "reused_per_s_met": reused["per_s"] >= TARGET_REUSED_PER_S,
            "p99_ms_at_rate": TARGET_P99_MS,
            "p99_met": http["reused_get_paced"]["p99_ms"] < TARGET_P99_MS,
            "p99_met_at_half_saturation": http["reused_get_paced_half_saturation"]["p99_ms"]
            < TARGET_P99_MS,
        }
        # Two views of each load: every busy thread (C work without the GIL included, but a
        # thread waiting for the GIL counted where it waits), and the GIL holder only (the
        # Python work each worker serialises on).
        figures["profile"] = {
            f"{name}_{view}": _profiled(instance, scripts[name], name, gil=view == "gil_holder")
            for name in ("reused_get", "fresh_post")
            for view in ("all_threads", "gil_holder")
        }
    print_table("OCSP over plain HTTP against its limits", figures)
    print(f"\nwritten to {write_results('ocsp', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
