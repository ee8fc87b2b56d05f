"""The secret questions' texts: user-facing, so they go through the translation catalogue."""

from __future__ import annotations

from starlette.requests import Request

from pwa_server.enrollment.policy import SECRET_QUESTIONS
from pwa_server.i18n import N_
from pwa_server.web.rendering import gettext

_TEXTS = {
    "first-school": N_("What was the name of your first school?"),
    "childhood-friend": N_("What is the first name of your best childhood friend?"),
    "first-pet": N_("What was the name of your first pet?"),
    "favourite-teacher": N_("What was the family name of your favourite teacher?"),
    "birth-city-of-mother": N_("In which city was your mother born?"),
    "first-concert": N_("Who performed at the first concert you went to?"),
}
if set(_TEXTS) != set(SECRET_QUESTIONS):  # a question without its text is a bug at start-up
    raise RuntimeError("every secret question needs its text")


def question_choices(request: Request) -> list[tuple[str, str]]:
    """(id, text) pairs in the visitor's language, in the domain's order."""
    return [(question, gettext(request, _TEXTS[question])) for question in SECRET_QUESTIONS]
