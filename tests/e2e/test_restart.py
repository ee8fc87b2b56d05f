"""`make run` twice: the second run reuses the token, the CAs and the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pwa_server.settings import Settings
from testbed.serving import ShomeiServer, free_port


def _shomei(*arguments: str, data_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOMEI_")}
    result = subprocess.run(
        [sys.executable, "-m", "pwa_server.cli", *arguments, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def _ca_pems(server: ShomeiServer) -> dict[str, bytes]:
    with server.client() as client:
        return {
            role: client.get(f"{server.base_url}/pki/{role}.pem").content
            for role in ("root", "issuing")
        }


def test_restart_serves_the_same_certificate_authorities(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    settings = Settings(
        data_dir=data_dir,
        https_port=free_port(),
        check_port=free_port(),
        http_port=free_port(),
        workers=1,
    )
    _shomei("init", data_dir=data_dir)
    server = ShomeiServer(settings, tmp_path / "serve.log")
    server.start()
    try:
        before = _ca_pems(server)
    finally:
        server.stop()

    assert "nothing changed" in _shomei("init", data_dir=data_dir)
    server.start()
    try:
        after = _ca_pems(server)
    finally:
        server.stop()
    assert after == before
    assert before["root"] != before["issuing"]
