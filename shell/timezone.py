"""The agency's own calendar: 'today' and month boundaries are in AGENCY_TIMEZONE."""

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app

from cases.model import utcnow


def agency_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["AGENCY_TIMEZONE"])


def agency_today() -> dt.date:
    return utcnow().astimezone(agency_zone()).date()


def agency_day_started_at() -> dt.datetime:
    """When the agency's today began (its midnight), in UTC."""
    midnight = dt.datetime.combine(agency_today(), dt.time(), tzinfo=agency_zone())
    return midnight.astimezone(dt.UTC)


def agency_local_to_utc(moment: dt.datetime) -> dt.datetime:
    """A wall-clock time typed by staff (naive, the agency's zone) as a UTC time stamp."""
    return moment.replace(tzinfo=agency_zone()).astimezone(dt.UTC)
