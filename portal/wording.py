"""How the portal words dates and the debtor's right to dispute: dates written out in the
debtor's language ("March 25, 2026", "25 de marzo de 2026"), and where the case stands in its
validation period (not started, open, ended), so no page offers a date that has passed."""

from __future__ import annotations

import datetime as dt

from cases.case import Case
from cases.disputes import within_validation_period
from cases.model import utcnow
from correspondence import i18n
from correspondence.validation_notice import written_date
from portal.access import bp

NOT_STARTED, OPEN, ENDED = "not_started", "open", "ended"


def long_date(day: dt.date) -> str:
    """The date written out in the portal's language."""
    return written_date(day, i18n.portal_locale())


def dispute_window(case: Case, now: dt.datetime | None = None) -> str:
    """`not_started` until the validation notice is sent (the period runs from it), `open`
    while a dispute would still be timely (SPEC §6.7: by the end of the last day in any of the
    debtor's zones), `ended` after."""
    if case.validation_period_ends_on is None:  # set when the notice is sent
        return NOT_STARTED
    return OPEN if within_validation_period(case, now or utcnow()) else ENDED


bp.add_app_template_global(long_date, "long_date")
bp.add_app_template_global(dispute_window, "dispute_window")
