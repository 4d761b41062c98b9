"""The agency's own calendar: 'today' and month boundaries are in AGENCY_TIMEZONE."""

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app

from cases.model import utcnow


def agency_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["AGENCY_TIMEZONE"])


def agency_today() -> dt.date:
    return utcnow().astimezone(agency_zone()).date()
