"""Key pairs made once on the session's token for the hsm tests, and a runner for CLI tools."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hsm import KeyAlgorithm, KeyRef
from pwa_server.runtime import Services


@pytest.fixture(scope="package")
def generated_keys(services: Services) -> Iterator[dict[KeyAlgorithm, KeyRef]]:
    """One key pair per algorithm on the session's token (a single RSA-3072 generation)."""
    token = services.token
    refs = {
        algorithm: token.generate_key(algorithm, f"test-{algorithm.value}-{secrets.token_hex(4)}")
        for algorithm in KeyAlgorithm
    }
    yield refs
    for ref in refs.values():
        token.destroy_key(ref)


def run(
    *arguments: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command line tool and capture its output (the exit code is the caller's to check)."""
    return subprocess.run(
        [str(argument) for argument in arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
        cwd=cwd,
    )
