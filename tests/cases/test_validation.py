"""Tests for cases/validation.py: business days, assumed receipt and the validation period."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cases.validation import assumed_receipt, is_business_day, validation_period_end


@pytest.mark.parametrize(
    ("day", "business"),
    [
        (date(2026, 3, 2), True),  # a plain Monday
        (date(2026, 3, 6), True),  # a plain Friday
        (date(2026, 3, 7), False),  # Saturday
        (date(2026, 3, 8), False),  # Sunday
        (date(2026, 11, 26), False),  # Thanksgiving
        (date(2026, 11, 27), True),  # the Friday after is not a federal holiday
        (date(2026, 12, 25), False),  # Christmas
        (date(2026, 12, 24), True),  # Christmas Eve is not
        (date(2027, 1, 1), False),  # New Year's Day, a Friday
        (date(2026, 7, 3), False),  # July 4 2026 is a Saturday: observed Friday July 3
        (date(2027, 12, 31), False),  # Jan 1 2028 is a Saturday: observed Friday Dec 31 2027
        (date(2026, 6, 19), False),  # Juneteenth
        (date(2026, 10, 12), False),  # Columbus Day, a federal holiday
        (date(2026, 11, 11), False),  # Veterans Day
    ],
)
def test_business_days(day, business):
    assert is_business_day(day) is business


@pytest.mark.parametrize(
    ("sent_on", "receipt", "period_end"),
    [
        # A plain week: Tue, Wed, Thu, Fri, Mon.
        (date(2026, 3, 2), date(2026, 3, 9), date(2026, 4, 8)),
        # Sent on a Friday: the weekend does not count.
        (date(2026, 3, 6), date(2026, 3, 13), date(2026, 4, 12)),
        # A Friday with Thanksgiving in the next week: Mon, Tue, Wed, (Thu), Fri, Mon.
        (date(2026, 11, 20), date(2026, 11, 30), date(2026, 12, 30)),
        # Sent on a Saturday: counting starts on Monday.
        (date(2026, 3, 7), date(2026, 3, 13), date(2026, 4, 12)),
        # The Wednesday before Thanksgiving: (Thu), Fri, Mon, Tue, Wed, Thu.
        (date(2026, 11, 25), date(2026, 12, 3), date(2027, 1, 2)),
        # The Monday of Thanksgiving week (as the notice test in tests/correspondence shows).
        (date(2026, 11, 23), date(2026, 12, 1), date(2026, 12, 31)),
        # The day before Christmas: (Fri 25), Mon, Tue, Wed, Thu, (Fri Jan 1), Mon.
        (date(2026, 12, 24), date(2027, 1, 4), date(2027, 2, 3)),
        # Across New Year: Wed, Thu, (Fri Jan 1), Mon, Tue, Wed.
        (date(2026, 12, 29), date(2027, 1, 6), date(2027, 2, 5)),
        # Before an observed July 4th: (Fri Jul 3 observed), Mon, Tue, Wed, Thu, Fri.
        (date(2026, 7, 2), date(2026, 7, 10), date(2026, 8, 9)),
    ],
)
def test_assumed_receipt_and_end_of_the_validation_period(sent_on, receipt, period_end):
    assert assumed_receipt(sent_on) == receipt
    assert validation_period_end(sent_on) == period_end


def test_the_sending_day_is_never_counted_even_when_it_is_a_business_day():
    assert is_business_day(date(2026, 3, 2))
    assert assumed_receipt(date(2026, 3, 2)) == date(2026, 3, 9)


def test_a_datetime_is_refused_because_its_day_depends_on_a_zone():
    with pytest.raises(TypeError):
        assumed_receipt(datetime(2026, 3, 2, 23, 30))
    with pytest.raises(TypeError):
        is_business_day("2026-03-02")
