"""The console's text search: a case-insensitive "contains" over several columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_

_ESCAPE = "\\"


def contains_any(text: str, *columns: ColumnElement[Any]) -> ColumnElement[bool]:
    """True for rows where one of `columns` contains `text`, ignoring case; LIKE's own
    wildcards in `text` are matched literally."""
    escaped = text.lower().replace(_ESCAPE, _ESCAPE * 2).replace("%", r"\%").replace("_", r"\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(column).like(pattern, escape=_ESCAPE) for column in columns))
