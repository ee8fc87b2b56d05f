"""The wheel, installed into a virtual environment of its own outside the checkout, as an
operator installs Shomei: `shomei init` and `shomei serve` from it render pages in Japanese and
serve the PWA's files (templates, catalogues and static files are the wheel's package data).

Only Shomei's own files come from the wheel (pip installs it with --no-deps); its
dependencies are this environment's, reached through a .pth file, so that nothing is
downloaded and the test takes seconds.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testbed.serving import ShomeiServer, instance_settings
from tests.conftest import run_tool

CHECKOUT = Path(__file__).resolve().parents[1]
# What the build must not see: setuptools reuses a build/ directory it finds, stale files and all.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".*_cache", "results"
)


def succeeded(
    *arguments: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """Run a command that must succeed; its standard output."""
    run = run_tool(*arguments, env=env, cwd=cwd, timeout=180)
    assert run.returncode == 0, f"{arguments}:\n{run.stdout}\n{run.stderr}"
    return run.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel that pyproject.toml builds, from a copy of the checkout's sources."""
    source = tmp_path_factory.mktemp("source") / "shomei"
    shutil.copytree(CHECKOUT, source, ignore=NOT_SOURCES)
    wheels = tmp_path_factory.mktemp("wheels")
    # setuptools is this environment's (a dev dependency): no isolated build to download.
    succeeded(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        wheels,
        source,
    )
    [built] = wheels.glob("shomei-*.whl")
    return built


@pytest.fixture(scope="module")
def environment(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed in it."""
    directory = tmp_path_factory.mktemp("installed") / "venv"
    venv.create(directory, symlinks=True, with_pip=False)
    python = directory / "bin" / "python"
    succeeded(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel
    )
    site_packages = Path(
        succeeded(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    # After the environment's own site-packages, so that Shomei is the wheel's; a plain path
    # line, so that the checkout's editable install (a .pth there) stays out.
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site_packages / "dependencies.pth").write_text("\n".join(dependencies) + "\n")
    return directory


@pytest.fixture(scope="module")
def server(environment: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShomeiServer]:
    """`shomei init` and `shomei serve` of the installed wheel, run from a directory of their
    own with a data directory (and SoftHSM token) of their own."""
    workdir = tmp_path_factory.mktemp("operator")
    running = ShomeiServer(
        instance_settings(workdir / "var", workers=1),
        workdir / "serve.log",
        command=[str(environment / "bin" / "shomei")],
        cwd=workdir,
    )
    running.run_cli("init")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: ShomeiServer) -> Iterator[httpx.Client]:
    with server.client(base_url=server.base_url) as opened:
        yield opened


def test_the_installed_shomei_is_the_wheels_and_not_the_checkouts(
    server: ShomeiServer, environment: Path
) -> None:
    # The server's interpreter, environment and working directory import the same modules.
    shown = succeeded(
        environment / "bin" / "python",
        "-c",
        "import hsm, pwa_server; print(pwa_server.__file__); print(hsm.__file__)",
        env=server.environment,
        cwd=server.cwd,
    )
    for module_file in map(Path, shown.split()):
        assert module_file.is_relative_to(environment)
        assert not module_file.is_relative_to(CHECKOUT)
    process = server.process
    assert process is not None
    command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
    assert str(environment / "bin" / "shomei").encode() in command_line


def test_the_home_page_is_rendered_from_the_wheels_templates_and_catalogue(
    client: httpx.Client,
) -> None:
    response = client.get("/", headers={"accept-language": "ja"})

    assert response.status_code == 200
    assert "<h1>証明書の取得</h1>" in response.text


def test_the_english_home_page_is_rendered_too(client: httpx.Client) -> None:
    response = client.get("/", headers={"accept-language": "en"})

    assert response.status_code == 200
    assert "<h1>Certificate enrollment</h1>" in response.text


def test_healthz_reports_every_component_ok(client: httpx.Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_service_worker_and_the_manifest_are_served_from_the_wheel(
    client: httpx.Client,
) -> None:
    service_worker = client.get("/sw.js")
    manifest = client.get("/static/manifest.webmanifest")

    assert service_worker.status_code == 200
    assert manifest.status_code == 200
    for icon in manifest.json()["icons"]:
        assert client.get(icon["src"]).status_code == 200
