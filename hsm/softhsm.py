"""A project-local SoftHSM2 token: the embedded default when no real HSM is configured."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hsm.errors import TokenInitError

DEFAULT_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


def write_config(conf_path: Path, token_dir: Path) -> None:
    """Write a softhsm2.conf that keeps tokens in `token_dir` (created here: SoftHSM won't)."""
    conf_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf_path.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )


def init_token(conf_path: Path, label: str, so_pin: str, user_pin: str) -> None:
    """Create and initialise a token with `softhsm2-util` in the configured token directory.

    The PINs reach softhsm2-util on its command line, which other local users could read
    from /proc while it runs; acceptable for the embedded development token only.
    """
    tool = shutil.which("softhsm2-util")
    if tool is None:
        raise TokenInitError("softhsm2-util is not installed (Debian package softhsm2)")
    result = subprocess.run(
        [tool, "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", user_pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise TokenInitError(
            f"softhsm2-util could not initialise token {label!r}: "
            f"{message[-1] if message else 'exit ' + str(result.returncode)}"
        )
