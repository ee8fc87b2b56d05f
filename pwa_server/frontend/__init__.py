"""The PWA's templates, static files and translation catalogues: package data of the wheel
(pyproject.toml), found beside this module wherever Shomei is installed."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _directory(name: str) -> Path:
    directory = files(__name__) / name
    # Jinja2, StaticFiles and FileResponse read files by path; pip installs a wheel as files.
    if not isinstance(directory, Path):
        raise RuntimeError(f"{directory} is not a directory; install Shomei from its wheel")
    return directory


TEMPLATES_DIR = _directory("templates")
STATIC_DIR = _directory("static")
LOCALES_DIR = _directory("locales")
