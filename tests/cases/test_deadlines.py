"""Nothing the agency sends during the validation period sets a payment deadline before the
period ends (12 CFR 1006.38(b), SPEC §6.7): offers are refused with the reason, discount bands
compute their date from the period."""

import datetime as dt

import pytest
import sqlalchemy as sa

from cases import audit
from cases.offers import (
    OfferError,
    SettlementOffer,
    add_band,
    band_expiry,
    band_quote,
    propose_offer,
    take_band_offer,
)
from cases.validation import earliest_payment_deadline, validation_period_end
from tests.conftest import notice_mailed

COLLECTOR = audit.Actor(None, "user:collector")
DEBTOR = audit.Actor(None, "debtor:1")
TODAY = dt.date(2026, 11, 23)


def offer(session, case, expires_on, today=TODAY):
    return propose_offer(
        session,
        case,
        percent_bps=9000,
        expires_on=expires_on,
        today=today,
        role="collector",
        actor=COLLECTOR,
    )


def test_an_offer_expiring_inside_the_validation_period_is_refused_with_the_reason(
    db_session, make_client, make_case
):
    # Mailed Friday 12-04: received Friday 12-11, the period ends Sunday 01-10.
    case = notice_mailed(make_case(make_client(), status="active"), dt.date(2026, 12, 4))
    assert case.validation_period_ends_on == dt.date(2027, 1, 10)
    today = dt.date(2026, 12, 6)
    with pytest.raises(OfferError) as refused:
        offer(db_session, case, dt.date(2026, 12, 20), today)
    assert "validation period runs until 2027-01-10" in str(refused.value)
    assert "1006.38(b)" in str(refused.value)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(SettlementOffer)) == 0
    made = offer(db_session, case, dt.date(2027, 1, 10), today)
    assert made.status == "approved"
    # Once the period is over, a short offer is fine.
    later = offer(db_session, case, dt.date(2027, 1, 20), dt.date(2027, 1, 11))
    assert later.expires_on == dt.date(2027, 1, 20)


def test_before_the_notice_is_mailed_the_period_counts_from_today_at_the_earliest(
    db_session, make_client, make_case
):
    case = make_case(make_client())  # new: no notice yet
    assert earliest_payment_deadline(case, TODAY) == validation_period_end(TODAY)
    with pytest.raises(OfferError, match="runs until 2026-12-31"):
        offer(db_session, case, dt.date(2026, 12, 7))
    # Handed over on the 23rd but not confirmed mailed by the 30th: counted from the 30th.
    case.validation_sent_at = dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC)
    case.validation_period_ends_on = validation_period_end(TODAY)
    later = dt.date(2026, 11, 30)
    assert earliest_payment_deadline(case, later) == validation_period_end(later)


def test_a_business_debt_has_no_validation_period_to_overshadow(db_session, make_client, make_case):
    case = make_case(make_client(), kind="commercial", company_name="Widgets LLC")
    assert earliest_payment_deadline(case, TODAY) is None
    assert offer(db_session, case, dt.date(2026, 12, 7)).expires_on == dt.date(2026, 12, 7)


def test_a_discount_band_runs_until_the_period_ends(db_session, make_client, make_case):
    client = make_client(min_settlement_bps=7000)
    band = add_band(
        db_session,
        client,
        min_balance_cents=50_000,
        max_balance_cents=None,
        pay_bps=8000,
        valid_days=10,
        actor=COLLECTOR,
    )
    case = make_case(client)  # its notice has not gone out
    assert band_expiry(band, TODAY, case) == dt.date(2026, 12, 31)
    taken = take_band_offer(db_session, case, today=TODAY, actor=DEBTOR, wording="I accept")
    assert taken.expires_on == dt.date(2026, 12, 31)
    # A case whose period is over keeps the band's own days.
    over = notice_mailed(make_case(client, last_name="Lee"))
    assert band_quote(db_session, over, TODAY) is not None
    assert band_expiry(band, TODAY, over) == TODAY + dt.timedelta(days=10)


def test_the_portal_band_shows_a_date_after_the_period(
    db_session, make_client, make_case, signed_in
):
    client = make_client(min_settlement_bps=7000)
    add_band(
        db_session,
        client,
        min_balance_cents=50_000,
        max_balance_cents=None,
        pay_bps=8000,
        valid_days=10,
        actor=COLLECTOR,
    )
    case = make_case(client)
    db_session.flush()
    page = signed_in(case).get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Accept now and pay by December 31, 2026" in page
    assert "2026-12-03" not in page and "December 3, 2026" not in page
