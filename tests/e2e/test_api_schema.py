"""schemathesis, a tool nobody here wrote, generates requests from /api/v1/openapi.json and
sends them to a real server: no answer may be a server error or differ from the document."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pwa_server.settings import Settings
from testbed.serving import ShomeiServer, free_port
from tests.conftest import run_tool

# What "no 5xx and no schema violations" means in schemathesis's terms.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Fixed, so that a failure in CI can be replayed here; about 800 requests in all.
SEED = "20261129"
EXAMPLES_PER_OPERATION = "25"


def _shomei(data_dir: Path, *arguments: str) -> str:
    """The command line in a process of its own: this one already loaded SoftHSM with the
    session's configuration, and a process can use only one."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHOMEI_")}
    ran = run_tool(
        sys.executable,
        "-m",
        "pwa_server.cli",
        *arguments,
        "--data-dir",
        data_dir,
        env=environment,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ShomeiServer, str]]:
    """A server of its own whose rate limit lets the whole run through, and a site's key."""
    root = tmp_path_factory.mktemp("schemathesis")
    settings = Settings(
        data_dir=root / "var",
        https_port=free_port(),
        check_port=free_port(),
        http_port=free_port(),
        workers=1,
    )
    _shomei(settings.data_dir, "init")
    added = _shomei(
        settings.data_dir,
        "site",
        "add",
        "fuzz",
        "--display-name",
        "Fuzz",
        "--return-url",
        "https://fuzz.example/back",
        "--json",
    )
    server = ShomeiServer(
        settings, root / "serve.log", environment={"SHOMEI_API_RATE_LIMIT_PER_MINUTE": "100000"}
    )
    server.start()
    yield server, json.loads(added)["api_key"]
    server.stop()


def test_generated_requests_get_no_server_error_and_answers_that_match_the_document(
    fuzzed_server: tuple[ShomeiServer, str], tmp_path: Path
) -> None:
    server, api_key = fuzzed_server
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable is not None, "schemathesis is a dev dependency"
    result = run_tool(
        executable,
        "run",
        f"{server.base_url}/api/v1/openapi.json",
        "--tls-verify",
        server.ca_bundle,
        "--header",
        f"Authorization: Bearer {api_key}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        EXAMPLES_PER_OPERATION,
        "--seed",
        SEED,
        "--generation-database",
        "none",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path),
        "--no-color",
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout
