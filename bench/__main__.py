"""`python -m bench [NAME ...]`: run every benchmark in bench/ (or those named).

A benchmark is a module of bench/ with a `main()` run under `if __name__ == "__main__"`;
helpers (common.py, names starting with "_") are not. Found by listing the folder, so that
a benchmark added by anyone runs with `make bench` without editing this file.

Each runs as `python -m bench.<name>` in a process of its own: SoftHSM reads its
configuration once per process, and a benchmark's imports, threads and memory must not
bias the next one's figures. A failure is reported and the others still run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = {"common"}


def benchmarks() -> list[str]:
    """The benchmark modules of bench/, by name."""
    return sorted(
        path.stem
        for path in HERE.glob("*.py")
        if not path.name.startswith("_")
        and path.stem not in HELPERS
        and "def main(" in path.read_text(encoding="utf-8")
    )


def main(names: list[str]) -> int:
    """Run each benchmark in turn; the exit status is 1 if any failed."""
    known = benchmarks()
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"unknown benchmarks {unknown}; known: {known}", file=sys.stderr)
        return 2
    timings: list[tuple[str, float, int]] = []
    for name in names or known:
        print(f"\n### bench.{name}", flush=True)
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent, check=False)
        timings.append((name, time.perf_counter() - start, run.returncode))
    print("\n### summary")
    for name, seconds, returncode in timings:
        print(f"bench.{name:14} {seconds:7.1f} s  exit {returncode}")
    failed = [name for name, _, returncode in timings if returncode != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
