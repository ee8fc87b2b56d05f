"""Modules stay small enough to read in one sitting: none in pwa_server/ or hsm/ over 400 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def test_no_module_in_pwa_server_or_hsm_has_more_than_400_lines() -> None:
    modules = [path for package in ("pwa_server", "hsm") for path in (ROOT / package).rglob("*.py")]
    lines = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in modules}

    too_long = sorted(
        f"{path.relative_to(ROOT)} ({count})" for path, count in lines.items() if count > MAX_LINES
    )
    assert len(modules) > 100
    assert too_long == []
