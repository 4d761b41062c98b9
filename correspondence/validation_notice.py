"""The validation notice as it is mailed (Reg F 12 CFR 1006.34, model form B-1): one PDF holding
the English notice, then the Spanish one for a debtor whose language is Spanish (1006.34(e):
the English notice always goes, the translation in the same mailing), each followed by the
notice the debtor's state requires (kept as data in state_notices/, one file per state)."""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path

from babel.dates import format_date
from sqlalchemy.orm import Session

from cases.case import Case
from cases.notices import validation_notice_data
from correspondence.pdf import render_document

STATE_NOTICES = Path(__file__).with_name("state_notices")
_LOCALES = {"en": "en_US", "es": "es"}


def written_date(day: dt.date, language: str) -> str:
    """A date written out, never as numbers: "January 2, 2027", "2 de enero de 2027"."""
    return format_date(day, "long", locale=_LOCALES[language])


@cache
def state_notice(state: str | None) -> dict | None:
    """The notice a state requires with the validation notice ({state, title, text, source,
    url}; title and text by language), or None when it requires none."""
    if not state or not re.fullmatch(r"[A-Z]{2}", state):
        return None
    path = STATE_NOTICES / f"{state}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def notice_languages(case: Case) -> list[str]:
    return ["en", "es"] if case.debtor.language == "es" else ["en"]


def validation_notice_document(session: Session, case: Case, *, sent_on: dt.date, agency: dict):
    """The mailing's pages (a WeasyPrint Document, to write alone or bind into a print run).
    Raises cases.notices.NoticeError when the notice may not go."""
    notices = [
        validation_notice_data(session, case, sent_on=sent_on, agency=agency, language=language)
        for language in notice_languages(case)
    ]
    return render_document(
        "pdf/validation_notice.html",
        notices=notices,
        state_notice=state_notice(notices[0]["state"]),
        written_date=written_date,
    )


def render_validation_notice(
    session: Session, case: Case, *, sent_on: dt.date, agency: dict
) -> bytes:
    """The mailing's PDF."""
    return validation_notice_document(session, case, sent_on=sent_on, agency=agency).write_pdf()
