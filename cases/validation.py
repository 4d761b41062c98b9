"""The validation notice's dates: business days, assumed receipt and the end of the validation
period (Reg F 12 CFR 1006.34(b)(5), SPEC §6.7)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

# 12 CFR 1006.34(b)(5): the consumer may be assumed to receive the notice five days after it is
# provided, excluding legal public holidays (5 U.S.C. 6103(a)), Saturdays and Sundays.
RECEIPT_BUSINESS_DAYS = 5
# ... and the validation period ends 30 days after that receipt.
VALIDATION_PERIOD_DAYS = 30


@lru_cache(maxsize=64)
def _federal_holidays(year: int) -> frozenset[date]:
    # Federal holidays only (no state subdivision), with their observed days: a Saturday
    # holiday is observed on the Friday before, a Sunday one on the Monday after. Counting the
    # observed day too only ever moves receipt later, which lengthens the consumer's period.
    return frozenset(holidays.country_holidays("US", years=year))


def _day(value: date) -> date:
    # A datetime is a date too in Python, but which day it is depends on a time zone the caller
    # knows and we do not: make the caller say.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"a calendar date is needed, not {type(value).__name__}")
    return value


def is_business_day(day: date) -> bool:
    """Not a Saturday, a Sunday, or a US federal holiday (observed days included)."""
    day = _day(day)
    return day.weekday() < 5 and day not in _federal_holidays(day.year)


def add_business_days(start: date, days: int) -> date:
    """The business day `days` business days after `start` (which is not counted)."""
    day, counted = _day(start), 0
    while counted < days:
        day += timedelta(days=1)
        if is_business_day(day):
            counted += 1
    return day


def assumed_receipt(sent_on: date) -> date:
    """The day the debtor is assumed to receive a notice: 5 business days after it was sent
    (the day of sending is not counted)."""
    return add_business_days(sent_on, RECEIPT_BUSINESS_DAYS)


def validation_period_end(sent_on: date) -> date:
    """The last day of the validation period: assumed receipt + 30 calendar days."""
    return assumed_receipt(sent_on) + timedelta(days=VALIDATION_PERIOD_DAYS)


def earliest_payment_deadline(case, today: date) -> date | None:
    """The first day on which a payment deadline the agency sets may fall (SPEC §6.7, 12 CFR
    1006.38(b): nothing may overshadow the right to dispute): the last day of the consumer's
    validation period, or None when it has ended (or the debt is a business's).

    Before the notice is mailed the period's end is not known yet: it is taken as the latest it
    can be counted from (the notice mailed today at the earliest)."""
    if case.debtor.kind != "consumer":
        return None
    if case.validation_sent_at is None:
        end = validation_period_end(today)
    elif case.validation_mailed_on is None:
        end = max(case.validation_period_ends_on, validation_period_end(today))
    else:
        end = case.validation_period_ends_on
    return end if end >= today else None
