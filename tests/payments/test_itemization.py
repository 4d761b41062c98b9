"""The Reg F itemisation (12 CFR 1006.34(c)(2)) of a case: the referral's lines, then the money
recorded since, checked against the ledger's balance."""

import datetime as dt

import pytest

from cases import audit
from cases.ledger import itemization
from cases.notices import NoticeError, validation_notice_data
from payments.posting import post_adjustment, post_payment, reverse_payment

ACTOR = audit.Actor(None, "test")
DAY = dt.date(2026, 11, 20)


def referred(make_case, make_client, **lines):
    """A case whose referral said: $1,100 owed on the charge-off date, $30 interest and $25 fees
    since, $80 paid and $20 credited since; so $1,055 placed (as principal $1,000 + $55)."""
    case = make_case(make_client(), principal=100_000, interest=3_000, fees=2_500)
    case.itemization_date = dt.date(2026, 1, 31)
    case.itemization_date_type = "charge_off"
    case.amount_on_itemization_date_cents = 110_000
    case.interest_since_itemization_cents = 3_000
    case.fees_since_itemization_cents = 2_500
    case.payments_since_itemization_cents = 8_000
    case.credits_since_itemization_cents = 2_000
    for name, cents in lines.items():
        setattr(case, name, cents)
    return case


def test_the_referrals_lines_are_the_itemisation(db_session, make_case, make_client):
    case = referred(make_case, make_client)
    items = itemization(db_session, case)
    assert items == {
        "itemization_date": "2026-01-31",
        "itemization_date_type": "charge_off",
        "amount_on_itemization_date_cents": 110_000,
        "interest_cents": 3_000,
        "fees_cents": 2_500,
        "payments_cents": 8_000,
        "credits_cents": 2_000,
        "current_amount_cents": 105_500,
        "adds_up": True,
        "problem": None,
    }


def test_money_recorded_after_referral_joins_the_since_lines(db_session, make_case, make_client):
    case = referred(make_case, make_client)
    payment = post_payment(
        db_session, case, 10_000, external_id="chk-1", received_at=DAY, method="check", actor=ACTOR
    )
    reverse_payment(
        db_session,
        payment,
        amount_cents=4_000,
        external_id="rev-1",
        received_at=DAY,
        reason="bounced in part",
        actor=ACTOR,
        today=DAY,
    )
    post_adjustment(db_session, case, -1_500, reason="goodwill", received_at=DAY, actor=ACTOR)
    # A correction up undoes part of a credit; it is neither interest nor a fee.
    post_adjustment(db_session, case, 500, reason="credit overstated", received_at=DAY, actor=ACTOR)
    items = itemization(db_session, case)
    assert items["amount_on_itemization_date_cents"] == 110_000
    assert (items["interest_cents"], items["fees_cents"]) == (3_000, 2_500)
    assert items["payments_cents"] == 8_000 + 10_000 - 4_000
    assert items["credits_cents"] == 2_000 + 1_500 - 500
    assert items["current_amount_cents"] == 105_500 - 6_000 - 1_000 == 98_500
    assert items["adds_up"]


def test_a_case_opened_without_a_referral_itemisation_owed_what_was_placed(
    db_session, make_case, make_client
):
    case = make_case(make_client(), principal=50_000, interest=1_000, fees=500)
    items = itemization(db_session, case)
    assert items["amount_on_itemization_date_cents"] == 51_500
    assert (items["interest_cents"], items["fees_cents"], items["payments_cents"]) == (0, 0, 0)
    assert items["current_amount_cents"] == 51_500 and items["adds_up"]


def test_lines_that_do_not_make_the_balance_do_not_add_up_and_no_notice_is_made(
    db_session, make_case, make_client
):
    case = referred(make_case, make_client, payments_since_itemization_cents=7_000)
    items = itemization(db_session, case)
    assert not items["adds_up"]
    assert items["problem"] == (
        "the itemisation makes $1,065.00 but the ledger's balance is $1,055.00"
    )
    with pytest.raises(NoticeError, match=r"makes \$1,065.00 but the ledger's balance"):
        validation_notice_data(db_session, case, sent_on=DAY, agency={})


def test_a_correction_up_with_no_credit_to_undo_does_not_add_up(db_session, make_case, make_client):
    case = make_case(make_client(), principal=50_000)
    post_adjustment(db_session, case, 700, reason="late fee", received_at=DAY, actor=ACTOR)
    items = itemization(db_session, case)
    assert items["current_amount_cents"] == 50_700
    assert not items["adds_up"]
    assert items["problem"] == "the itemisation would print a negative credits"
