"""The card-payment rules the portal asks (payments.card), and what a case's status allows."""

import datetime as dt

import pytest

from payments.card import (
    CardAmountError,
    can_pay_by_card,
    check_card_amount,
    settlement_due,
)
from tests.conftest import notice_mailed
from tests.payments.test_settlements import TODAY, accepted, pay  # noqa: F401 (fixture)


@pytest.fixture
def make_case(make_case):
    """Cases whose validation notice was mailed long ago (the `accepted` offer runs short)."""
    return lambda *args, **kwargs: notice_mailed(make_case(*args, **kwargs))


@pytest.mark.parametrize(
    ("status", "payments", "offers", "plan"),
    [
        ("new", True, True, False),
        ("active", True, True, True),
        ("plan", True, True, False),
        ("disputed", True, False, False),
        ("paid", False, False, False),
        ("settled", False, False, False),
        ("closed", False, False, False),
    ],
)
def test_what_a_case_takes_follows_its_status(
    db_session, make_client, make_case, status, payments, offers, plan
):
    case = make_case(make_client(), status=status)
    assert (case.takes_payments, case.takes_offers, case.takes_plan) == (payments, offers, plan)
    assert can_pay_by_card(case, 500) is payments
    assert can_pay_by_card(case, 499) is False


def test_card_amounts_between_the_minimum_and_the_balance():
    assert check_card_amount(500, 10_000) == 500
    assert check_card_amount(10_000, 10_000) == 10_000
    with pytest.raises(CardAmountError) as small:
        check_card_amount(499, 10_000)
    with pytest.raises(CardAmountError) as large:
        check_card_amount(10_001, 10_000)
    assert (small.value.kind, large.value.kind) == ("too_small", "too_large")


def test_what_is_left_on_an_accepted_settlement_and_none_once_it_lapsed(db_session, accepted):  # noqa: F811
    case, offer = accepted
    assert settlement_due(db_session, case, 100_000, TODAY) == (offer, 85_000)
    pay(db_session, case, 30_000, "1001")
    assert settlement_due(db_session, case, 70_000, TODAY) == (offer, 55_000)
    assert settlement_due(db_session, case, 40_000, TODAY) == (offer, 40_000)  # never over
    lapsed = offer.expires_on + dt.timedelta(days=1)
    assert settlement_due(db_session, case, 70_000, lapsed) == (None, 70_000)
