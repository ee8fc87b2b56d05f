"""Japanese and English for every user-facing text, from the gettext catalogues of frontend/.

Catalogues are read from their .po files at start-up (Babel compiles them in memory), so there
is no build step and no compiled file to forget. English msgids are the source texts.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pwa_server.frontend import LOCALES_DIR, TEMPLATES_DIR

LOCALES = ("ja", "en")  # Japanese users come first (the seeds are Japanese services)
DEFAULT_LOCALE = "ja"


def N_(message: str) -> str:
    """Marks a text for extraction (babel.cfg, keyword N_); it is translated when shown."""
    return message


@functools.cache
def translations(locale: str) -> Translations:
    """The catalogue for `locale` (English falls through to the msgids)."""
    po_file = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_file.exists():
        return Translations()
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The locale to answer in: an explicit choice, else the best of Accept-Language."""
    if chosen is not None and chosen in LOCALES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LOCALES and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LOCALE


class Templates:
    """Jinja2 templates rendered in either language: one environment per locale, so that
    templates call _("...", name=value) with gettext's new-style formatting and escaping."""

    def __init__(
        self, directory: Path = TEMPLATES_DIR, *, names: Mapping[str, object] | None = None
    ) -> None:
        """`names` are known to every template (such as the domain's words to compare with)."""
        self._environments = {locale: _environment(directory, locale) for locale in LOCALES}
        for env in self._environments.values():
            env.globals.update(names or {})

    def render(self, template: str, locale: str, **context: object) -> str:
        """Render `template` in `locale` (a locale we do not have falls back to Japanese)."""
        env = self._environments.get(locale) or self._environments[DEFAULT_LOCALE]
        return env.get_template(template).render(locale=locale, **context)


def _environment(directory: Path, locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]  # added by the extension
        translations(locale), newstyle=True
    )
    return env
