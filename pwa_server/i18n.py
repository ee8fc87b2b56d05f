"""Japanese and English for every user-facing text, from the gettext catalogues of frontend/.

Catalogues are read from their .po files at start-up (Babel compiles them in memory), so there
is no build step and no compiled file to forget. English msgids are the source texts.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import zoneinfo
from collections.abc import Mapping
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_time, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pwa_server.frontend import LOCALES_DIR, TEMPLATES_DIR

LOCALES = ("ja", "en")  # Japanese users come first (the seeds are Japanese services)
DEFAULT_LOCALE = "ja"
# The CLDR locale dates are written in: English ones day first ("3 December 2028"), which
# neither a Japanese nor an American reader can take for another day.
_DATE_LOCALES = {"ja": "ja", "en": "en_GB"}


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


def local_date(moment: dt.datetime, locale: str, zone: zoneinfo.ZoneInfo) -> str:
    """The day of `moment` in `zone`, written for `locale`: 2028年12月3日, 3 December 2028."""
    return format_date(moment.astimezone(zone), "long", locale=_DATE_LOCALES[locale])


def local_datetime(moment: dt.datetime, locale: str, zone: zoneinfo.ZoneInfo) -> str:
    """The day and minute of `moment` in `zone` with the zone's name, written for `locale`:
    2028年12月3日 15:04（日本時間）, 3 December 2028, 15:04 (Japan Time)."""
    cldr = Locale.parse(_DATE_LOCALES[locale])
    local = moment.astimezone(zone)
    when = cldr.datetime_formats["long"].format(
        format_time(local, "short", locale=cldr), format_date(local, "long", locale=cldr)
    )
    # A place's zone by its generic name (日本時間, all year); UTC and Etc/ zones have no place.
    named = local if zone.key.startswith(("UTC", "Etc/")) else zone
    zone_name = get_timezone_name(named, "long", locale=cldr)
    written = translations(locale).gettext(N_("%(time)s (%(zone)s)"))
    return written % {"time": when, "zone": zone_name}


class Templates:
    """Jinja2 templates rendered in either language: one environment per locale, so that
    templates call _("...", name=value) with gettext's new-style formatting and escaping."""

    def __init__(
        self,
        directory: Path = TEMPLATES_DIR,
        *,
        zone: zoneinfo.ZoneInfo,
        names: Mapping[str, object] | None = None,
    ) -> None:
        """`names` are known to every template (such as the domain's words to compare with);
        the filters local_date and local_datetime write dates in `zone`."""
        self._environments = {locale: _environment(directory, locale, zone) for locale in LOCALES}
        for env in self._environments.values():
            env.globals.update(names or {})

    def render(self, template: str, locale: str, **context: object) -> str:
        """Render `template` in `locale` (a locale we do not have falls back to Japanese)."""
        env = self._environments.get(locale) or self._environments[DEFAULT_LOCALE]
        return env.get_template(template).render(locale=locale, **context)


def _environment(directory: Path, locale: str, zone: zoneinfo.ZoneInfo) -> Environment:
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
    env.filters["local_date"] = lambda moment: local_date(moment, locale, zone)
    env.filters["local_datetime"] = lambda moment: local_datetime(moment, locale, zone)
    return env
