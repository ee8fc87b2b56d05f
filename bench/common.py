"""What the benchmarks share: a throwaway Shomei instance served by a real `shomei serve`,
work run in several processes at once, CPU accounting, percentiles, py-spy profiles, and
the results (a printed table and bench/results/<name>.json).

The machine is small (2 cores) and shared, so no figure means anything alone: every
benchmark measures the limit it is compared with in the same run and reports the ratio.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from pwa_server.settings import Settings
from testbed.serving import STARTUP_SECONDS, ShomeiServer, free_port

RESULTS = Path(__file__).resolve().parent / "results"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_T = TypeVar("_T")


def scrub_environment() -> None:
    """Drop SHOMEI_* from this process's environment.

    Settings read SHOMEI_* variables; one left in a developer's shell (a database URL, a
    port) would otherwise leak into the throwaway instance and into the processes that
    open it, and the benchmark would measure something else.
    """
    for key in [key for key in os.environ if key.startswith("SHOMEI_")]:
        del os.environ[key]


@dataclass(frozen=True)
class InstanceConfig:
    """Where a throwaway instance lives; picklable, so spawned processes can open it too."""

    data_dir: Path
    https_port: int
    check_port: int
    http_port: int
    workers: int

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            https_port=self.https_port,
            check_port=self.check_port,
            http_port=self.http_port,
            workers=self.workers,
        )


class Instance(ShomeiServer):
    """A fresh data directory made by `python -m pwa_server.cli init`, served by
    `python -m pwa_server.cli serve` in a child process (testbed/serving.py), as an operator
    would run it.

    The worker count is the server's default (Settings.workers) unless one is given, since
    the figures are meant to say what an instance on this machine does as installed.
    """

    def __init__(self, name: str, workers: int | None = None) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix=f"shomei-bench-{name}-"))
        self.config = InstanceConfig(
            data_dir=self._directory / "var",
            https_port=free_port(),
            check_port=free_port(),
            http_port=free_port(),
            workers=Settings().workers if workers is None else workers,
        )
        super().__init__(self.config.settings(), self._directory / "serve.log")

    def __enter__(self) -> Instance:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)

    def init(self) -> None:
        """`shomei init` in a subprocess: token, CAs, TLS identity, database."""
        self.run_cli("init")

    def start(self) -> None:
        """`shomei serve`, then wait until /healthz answers and every worker has started."""
        super().start()
        # Every worker answers only once it has opened the token; /healthz from one of them
        # says nothing about the others, so wait until all are past their start-up.
        deadline = time.monotonic() + STARTUP_SECONDS
        while len(self.worker_pids()) < self.config.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)

    def worker_pids(self) -> list[int]:
        """The worker processes `shomei serve` spawned (multiprocessing's spawn_main)."""
        if self.process is None:
            return []
        return [
            pid
            for pid in children_of(self.process.pid)
            if b"spawn_main" in _read_bytes(Path(f"/proc/{pid}/cmdline"))
        ]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def children_of(pid: int) -> list[int]:
    """The direct children of `pid`, from /proc (Linux)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children.extend(int(child) for child in _read_bytes(task / "children").split())
    return children


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used so far (utime and stime in /proc)."""
    total = 0
    for pid in pids:
        stat = _read_bytes(Path(f"/proc/{pid}/stat"))
        if not stat:
            continue
        # The command name may hold spaces; the fields after its closing parenthesis don't.
        fields = stat[stat.rindex(b")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


class CpuShare:
    """CPU time over a block: ours (this process, its waited-for children, and `pids`),
    the whole machine's, and so everyone else's. On a shared machine the last one says how
    much of the cores a figure really had."""

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.pids = list(pids)
        self.figures: dict[str, float] = {}

    @staticmethod
    def _machine() -> tuple[float, float]:
        """(busy, stolen) seconds of all cores since boot, from /proc/stat."""
        fields = [
            int(value) for value in _read_bytes(Path("/proc/stat")).split(b"\n")[0].split()[1:]
        ]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return (user + nice + system + irq + softirq) / _CLOCK_TICKS, steal / _CLOCK_TICKS

    def _ours(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime) + cpu_seconds(
            self.pids
        )

    def __enter__(self) -> CpuShare:
        self._start = (time.perf_counter(), self._ours(), *self._machine())
        return self

    def __exit__(self, *_: object) -> None:
        wall0, ours0, busy0, steal0 = self._start
        busy, steal = self._machine()
        wall = time.perf_counter() - wall0
        ours = self._ours() - ours0
        self.figures = {
            "ours_cores_busy": round(ours / wall, 3),
            "others_cores_busy": round(max(0.0, (busy - busy0) - ours) / wall, 3),
            "stolen_cores": round((steal - steal0) / wall, 3),
        }


# --- several processes at once -------------------------------------------------------------


def _child(
    function: Callable[..., Any],
    barrier: Barrier,
    arguments: tuple[Any, ...],
    results: Any,
    index: int,
) -> None:
    try:
        results.put((index, function(barrier, *arguments), None))
    except BaseException as error:
        barrier.abort()  # the others must not wait for ever for a process that failed
        results.put((index, None, f"{type(error).__name__}: {error}"))


def in_processes(function: Callable[..., _T], arguments: Sequence[tuple[Any, ...]]) -> list[_T]:
    """Run function(barrier, *arguments[i]) in one spawned process per item, at once.

    Each process does its own start-up (imports, opening the token) and then waits at the
    barrier, so that the timed parts overlap and the figures add up to what that many
    processes do together, as the server's workers would.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(arguments))
    results = context.Queue()
    processes = [
        context.Process(target=_child, args=(function, barrier, item, results, index))
        for index, item in enumerate(arguments)
    ]
    for process in processes:
        process.start()
    collected: dict[int, Any] = {}
    errors: list[str] = []
    while len(collected) < len(processes):
        try:
            index, value, error = results.get(timeout=1.0)
        except queue.Empty:
            # A process that died without a word (a crash in a C library, a kill) would
            # otherwise leave this loop waiting for ever.
            dead = [
                f"process {position} exited with {process.exitcode}"
                for position, process in enumerate(processes)
                if position not in collected and process.exitcode not in (None, 0)
            ]
            if dead:
                barrier.abort()
                for process in processes:
                    process.kill()
                raise RuntimeError("; ".join(dead)) from None
            continue
        if error is not None:
            errors.append(error)
        collected[index] = value
    for process in processes:
        process.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return [collected[index] for index in range(len(arguments))]


@dataclass(frozen=True)
class Count:
    """Operations done in a timed window by one process, and that process's CPU time."""

    operations: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.operations / self.seconds


def timed(barrier: Barrier | None, operation: Callable[[], object], seconds: float) -> Count:
    """Warm up, wait for the other processes, then run `operation` for `seconds`."""
    for _ in range(3):
        operation()
    if barrier is not None:
        barrier.wait()
    count = 0
    cpu = time.process_time()
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        operation()
        count += 1
    return Count(count, elapsed, time.process_time() - cpu)


def total_rate(counts: Sequence[Count]) -> float:
    """Operations per second of processes that ran side by side."""
    return sum(count.rate for count in counts)


# --- latencies -------------------------------------------------------------------------------


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile: a value that was observed (with few samples, p99 is the max)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max in milliseconds, and the sample count."""
    return {
        "samples": len(seconds),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p90_ms": percentile(seconds, 90) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "max_ms": max(seconds) * 1000 if seconds else math.nan,
    }


# --- profiles --------------------------------------------------------------------------------


class PySpy:
    """`py-spy record` on `shomei serve` and its workers (--subprocesses) while load runs.

    --nonblocking reads the workers' memory without stopping them, so the profile costs
    the server little; --format raw gives collapsed stacks that `summarise_profile` reads.
    Idle threads (the event loop waiting in epoll, idle pool threads) are left out by
    py-spy, so the shares are shares of the workers' busy time. A thread waiting for the GIL
    counts as busy, though, in the frame that waits (often a socket write or a
    Condition.notify when threads hand work over); with `gil`, only the thread holding the
    GIL is sampled: that shows the Python work a worker serialises on, but hides C code that
    runs without the GIL (Argon2, SoftHSM).
    """

    def __init__(self, pid: int, output: Path, rate: int = 200, *, gil: bool = False) -> None:
        self.output = output
        self.error: str | None = None
        executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(executable).exists():
            self.process: subprocess.Popen[bytes] | None = None
            self.error = "py-spy is not installed (pip install -e '.[dev]')"
            return
        self.process = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--nonblocking",
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(output),
                *(["--gil"] if gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # py-spy attaches to every process before it samples
        if self.process.poll() is not None:
            self.error = self._stderr()

    def _stderr(self) -> str:
        assert self.process is not None
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace").strip()[-500:]

    def stop(self) -> list[tuple[list[str], int]]:
        """Stop sampling (SIGINT makes py-spy write its file) and return the stacks."""
        if self.process is None:
            return []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.output.exists():
            self.error = self.error or self._stderr() or "py-spy wrote no profile"
            return []
        return read_collapsed(self.output)


def read_collapsed(path: Path) -> list[tuple[list[str], int]]:
    """Collapsed stacks ("root;...;leaf count"), root first."""
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


_LINE_NUMBER = re.compile(r":\d+\)$")
# Running frames that are waits, not work: py-spy --nonblocking cannot always tell a thread
# blocked in a system call from a busy one. Samples ending in one of these are dropped.
IDLE_FRAMES = (
    r"^EpollSelector\.select \(selectors\.py",
    r"^_worker \(concurrent/futures/thread\.py",
    r"^supervise \(pwa_server/serve/supervisor\.py",
    r"^(Condition|Event|Semaphore)\.(wait|acquire) \(threading\.py",
    r"^Thread\._wait_for_tstate_lock \(threading\.py",
    r"^worker_thread \(anyio/_backends/_asyncio\.py",
)


def _function(frame: str) -> str:
    """A frame without its line number: 'verify (argon2/_password_hasher.py)'."""
    return _LINE_NUMBER.sub(")", frame)


def summarise_profile(
    stacks: Sequence[tuple[list[str], int]],
    *,
    chain: Sequence[str],
    owners: Sequence[tuple[str, Sequence[str]]],
    categories: Sequence[tuple[str, Sequence[str]]],
    top: int = 12,
) -> dict[str, Any]:
    """Where the workers' busy samples went, inside and outside `chain`.

    A sample is in the chain when any frame of its stack matches a `chain` pattern (the
    work that the in-process figure also does). Outside it, a sample whose stack matches an
    `owners` pattern anywhere is that owner's (say a background task, whatever it calls).
    Every other sample goes to the category of the frame nearest to the running one that
    matches a `categories` pattern: a database call made by the download handler counts as
    database, Python code of the handler itself as the handler. The running frames (the
    leaves) are counted too, to name what costs. Patterns are regular expressions searched
    in frames like 'issue (pwa_server/pki/issuance.py:62)'. Samples whose running frame is
    a wait (IDLE_FRAMES) are dropped first: shares are of the workers' busy samples.
    """
    chain_patterns = [re.compile(pattern) for pattern in chain]
    compiled_owners = [
        (name, [re.compile(pattern) for pattern in patterns]) for name, patterns in owners
    ]
    compiled = [
        (name, [re.compile(pattern) for pattern in patterns]) for name, patterns in categories
    ]

    def matches(frame: str, patterns: Sequence[re.Pattern[str]]) -> bool:
        return any(pattern.search(frame) for pattern in patterns)

    def category(stack: Sequence[str]) -> str:
        for frame in reversed(stack):
            for name, patterns in compiled:
                if matches(frame, patterns):
                    return name
        return "other"

    idle = [re.compile(pattern) for pattern in IDLE_FRAMES]
    waiting = sum(count for stack, count in stacks if matches(stack[-1], idle))
    stacks = [(stack, count) for stack, count in stacks if not matches(stack[-1], idle)]
    total = sum(count for _, count in stacks)
    inside: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    inside_leaves: Counter[str] = Counter()
    outside_leaves: Counter[str] = Counter()
    for stack, count in stacks:
        if any(matches(frame, chain_patterns) for frame in stack):
            inside[category(stack)] += count
            inside_leaves[_function(stack[-1])] += count
            continue
        outside_leaves[_function(stack[-1])] += count
        owner = next(
            (
                name
                for name, patterns in compiled_owners
                if any(matches(f, patterns) for f in stack)
            ),
            None,
        )
        outside[owner or category(stack)] += count

    def share(count: int) -> float:
        return round(count / total, 4) if total else math.nan

    def frames(leaves: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [
            {"frame": frame, "share": share(count)} for frame, count in leaves.most_common(limit)
        ]

    return {
        "samples": total,
        "idle_samples_dropped": waiting,
        "chain_share": share(sum(inside.values())),
        "outside_chain_share": share(sum(outside.values())),
        "outside_chain_by_category": {name: share(count) for name, count in outside.most_common()},
        "inside_chain_by_category": {name: share(count) for name, count in inside.most_common()},
        "top_running_frames_outside_chain": frames(outside_leaves, top),
        "top_running_frames_inside_chain": frames(inside_leaves, top // 2),
    }


# --- results ---------------------------------------------------------------------------------


def _flatten(figures: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            for position, item in enumerate(value, 1):
                yield from _flatten(item, f"{name}[{position}].")
        else:
            yield name, value


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:12.3f}" if abs(value) < 10 else f"{value:12.1f}"
    return f"{value!s:>12}"


def print_table(title: str, figures: Mapping[str, Any]) -> None:
    """Every figure on a line of its own, nested names joined with dots."""
    rows = list(_flatten(figures))
    width = max(len(name) for name, _ in rows)
    print(f"\n== {title} ==")
    for name, value in rows:
        text = _format(value)
        # Long texts (frames, command lines) read better left-aligned.
        print(f"{name:{width}}  {text if len(text.strip()) <= 12 else value}")


def write_results(name: str, figures: Mapping[str, Any]) -> Path:
    """bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return path


@contextmanager
def stopwatch(figures: dict[str, Any], name: str = "benchmark_seconds") -> Iterator[None]:
    """Record how long the block took in `figures[name]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        figures[name] = round(time.perf_counter() - start, 1)
