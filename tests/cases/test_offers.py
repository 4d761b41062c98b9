"""Settlement offers in the domain: authority by share of the balance, one live offer per
case, approval, withdrawal, acceptance and expiry, every decision audited."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.offers import (
    OfferError,
    SettlementOffer,
    accept_offer,
    add_band,
    approve_offer,
    band_quote,
    bands_of,
    expire_offers,
    propose_offer,
    take_band_offer,
    withdraw_offer,
)
from tests.conftest import notice_mailed


@pytest.fixture
def make_case(make_case):
    """Cases whose validation notice was mailed long ago: offers here may run short (the
    deadlines inside the validation period are tested in tests/cases/test_deadlines.py)."""
    return lambda *args, **kwargs: notice_mailed(make_case(*args, **kwargs))


TODAY = dt.date(2026, 11, 23)
COLLECTOR = audit.Actor(None, "user:collector")
SUPERVISOR = audit.Actor(None, "user:supervisor")
DEBTOR = audit.Actor(None, "debtor:1")


@pytest.fixture
def case(make_client, make_case):
    return make_case(make_client(min_settlement_bps=7000, max_plan_months=6), status="active")


def propose(session, case, role="collector", **kw):
    kw.setdefault("expires_on", TODAY + dt.timedelta(days=14))
    return propose_offer(
        session,
        case,
        today=TODAY,
        role=role,
        actor=COLLECTOR if role == "collector" else SUPERVISOR,
        **kw,
    )


def offers(session, case):
    return session.scalars(
        sa.select(SettlementOffer)
        .where(SettlementOffer.case_id == case.id)
        .order_by(SettlementOffer.id)
    ).all()


def actions(session, case):
    return [
        e.action
        for e in session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.case_id == case.id, AuditEvent.entity_type == "settlement_offer")
            .order_by(AuditEvent.id)
        )
    ]


def test_collector_alone_down_to_85_percent_is_approved_at_once(db_session, case):
    offer = propose(db_session, case, amount_cents=85_000)
    assert (offer.status, offer.balance_cents, offer.saving_cents) == ("approved", 100_000, 15_000)
    assert offer.approved_at is not None
    assert actions(db_session, case) == ["offer.proposed"]


def test_by_percentage_rounds_half_up_to_the_cent(db_session, make_client, make_case):
    case = make_case(make_client(), principal=100_001, status="active")
    offer = propose(db_session, case, percent_bps=9000)
    assert offer.amount_cents == 90_001  # 90,000.9 cents


def test_between_floor_and_85_percent_waits_for_a_supervisor(db_session, case):
    offer = propose(db_session, case, amount_cents=75_000)
    assert offer.status == "proposed" and offer.approved_by_id is None
    with pytest.raises(OfferError, match="only a supervisor"):
        approve_offer(db_session, offer, role="collector", actor=COLLECTOR, today=TODAY)
    assert offer.status == "proposed"
    approve_offer(db_session, offer, role="supervisor", actor=SUPERVISOR, today=TODAY)
    assert offer.status == "approved" and offer.approved_at is not None
    assert actions(db_session, case) == ["offer.proposed", "offer.approved"]


def test_a_supervisor_proposing_inside_the_floor_needs_no_second_approval(db_session, case):
    assert propose(db_session, case, role="supervisor", amount_cents=70_000).status == "approved"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"amount_cents": 69_999}, "under Acme Plumbing's floor of 70%"),
        ({"percent_bps": 6999}, "floor"),
        ({"amount_cents": 100_000}, "less than the balance"),
        ({"amount_cents": 0}, "more than \\$0.00"),
        ({"amount_cents": 90_000, "percent_bps": 9000}, "not both"),
        ({"amount_cents": 90_000, "expires_on": TODAY}, "after today"),
        ({"amount_cents": 90_000, "expires_on": TODAY + dt.timedelta(days=61)}, "60 days"),
        ({"amount_cents": 90_000, "max_installments": 7}, "between 1 and 6"),
    ],
)
def test_refused_offers_change_nothing(db_session, case, kw, message):
    with pytest.raises(OfferError, match=message):
        propose(db_session, case, **kw)
    assert offers(db_session, case) == [] and actions(db_session, case) == []


def test_a_supervisor_cannot_go_under_the_floor_either(db_session, case):
    with pytest.raises(OfferError, match="floor"):
        propose(db_session, case, role="supervisor", amount_cents=60_000)


def test_no_offer_on_a_closed_or_disputed_case(db_session, make_client, make_case):
    client = make_client()
    for status in ("disputed", "closed", "paid"):
        with pytest.raises(OfferError, match=f"a {status} case cannot"):
            propose(db_session, make_case(client, status=status), amount_cents=90_000)


def test_one_live_offer_per_case_a_new_one_withdraws_the_last(db_session, case):
    first = propose(db_session, case, amount_cents=90_000)
    second = propose(db_session, case, amount_cents=88_000)
    assert (first.status, second.status) == ("withdrawn", "approved")
    assert actions(db_session, case) == ["offer.proposed", "offer.withdrawn", "offer.proposed"]


def test_an_accepted_offer_cannot_be_replaced(db_session, case):
    offer = propose(db_session, case, amount_cents=90_000)
    accept_offer(db_session, offer, actor=DEBTOR, today=TODAY, wording="I accept")
    with pytest.raises(OfferError, match="accepted an offer"):
        propose(db_session, case, amount_cents=88_000)
    assert len(offers(db_session, case)) == 1


def test_withdraw_needs_a_supervisor_and_an_open_offer(db_session, case):
    offer = propose(db_session, case, amount_cents=75_000)
    with pytest.raises(OfferError, match="only a supervisor"):
        withdraw_offer(db_session, offer, role="collector", actor=COLLECTOR, reason="no")
    withdraw_offer(db_session, offer, role="admin", actor=SUPERVISOR, reason="too low")
    assert offer.status == "withdrawn"
    with pytest.raises(OfferError, match="withdrawn; only open offers"):
        withdraw_offer(db_session, offer, role="admin", actor=SUPERVISOR, reason="again")
    with pytest.raises(OfferError, match="not waiting for approval"):
        approve_offer(db_session, offer, role="admin", actor=SUPERVISOR, today=TODAY)


def test_accepting_records_the_time_and_the_wording(db_session, case):
    offer = propose(db_session, case, amount_cents=75_000)
    with pytest.raises(OfferError, match="cannot be accepted"):  # not approved yet
        accept_offer(db_session, offer, actor=DEBTOR, today=TODAY, wording="I accept")
    approve_offer(db_session, offer, role="supervisor", actor=SUPERVISOR, today=TODAY)
    accept_offer(db_session, offer, actor=DEBTOR, today=TODAY, wording="I accept the terms")
    assert offer.status == "accepted" and offer.accepted_at is not None
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "offer.accepted")
    ).one()
    assert event.actor_label == "debtor:1" and event.detail["wording"] == "I accept the terms"


def test_expiry(db_session, case):
    offer = propose(db_session, case, amount_cents=90_000, expires_on=TODAY + dt.timedelta(days=3))
    later = TODAY + dt.timedelta(days=4)
    assert offer.shown_status(TODAY) == "approved" and offer.shown_status(later) == "expired"
    with pytest.raises(OfferError, match="expired"):
        accept_offer(db_session, offer, actor=DEBTOR, today=later, wording="I accept")
    assert expire_offers(db_session, TODAY + dt.timedelta(days=3)) == 0
    assert expire_offers(db_session, later) == 1
    assert offer.status == "expired"
    assert expire_offers(db_session, later) == 0
    assert actions(db_session, case)[-1] == "offer.expired"


# --- a client's self-service bands ---------------------------------------------------------


def band(session, client, low, high, bps, days=30):
    return add_band(
        session,
        client,
        min_balance_cents=low,
        max_balance_cents=high,
        pay_bps=bps,
        valid_days=days,
        actor=SUPERVISOR,
    )


def test_bands_stay_inside_the_floor_and_do_not_overlap(db_session, make_client):
    client = make_client(min_settlement_bps=7000)
    band(db_session, client, 0, 50_000, 9000)
    band(db_session, client, 50_000, None, 8000)
    for args, message in [
        ((100_000, 200_000, 8500), "overlaps"),
        ((300_000, 310_000, 6999), "at least the client's floor \\(70%\\)"),
        ((300_000, 310_000, 10_000), "less than 100%"),
        ((-1, 10_000, 9000), "cannot be negative"),
        ((20_000, 10_000, 9000), "more than the lowest"),
        ((300_000, 310_000, 9000, 61), "1 to 60 days"),
    ]:
        with pytest.raises(OfferError, match=message):
            band(db_session, client, *args)
    assert len(bands_of(db_session, client.id)) == 2


def test_a_debtor_in_a_band_takes_the_discount(db_session, make_client, make_case):
    client = make_client(min_settlement_bps=7000)
    band(db_session, client, 50_000, 200_000, 8000, days=10)
    case = make_case(client, status="active")  # $1,000.00
    b, amount, balance = band_quote(db_session, case, TODAY)
    assert (amount, balance) == (80_000, 100_000)
    offer = take_band_offer(db_session, case, today=TODAY, actor=DEBTOR, wording="I accept")
    assert (offer.status, offer.amount_cents, offer.expires_on) == (
        "accepted",
        80_000,
        TODAY + dt.timedelta(days=10),
    )
    assert offer.proposed_by_id is None
    proposed = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "offer.proposed")
    ).one()
    assert proposed.detail["self_service"] is True and proposed.detail["band_id"] == b.id
    # A live offer: no second discount.
    assert band_quote(db_session, case, TODAY) is None
    with pytest.raises(OfferError, match="no discount"):
        take_band_offer(db_session, case, today=TODAY, actor=DEBTOR, wording="again")


def test_no_band_no_discount_and_a_raised_floor_still_holds(db_session, make_client, make_case):
    client = make_client(min_settlement_bps=7000)
    band(db_session, client, 200_000, None, 7000)
    case = make_case(client, status="active")
    assert band_quote(db_session, case, TODAY) is None  # $1,000.00 is under the band
    big = make_case(client, principal=300_000, status="active")
    assert band_quote(db_session, big, TODAY)[1] == 210_000
    client.min_settlement_bps = 7500
    assert band_quote(db_session, big, TODAY)[1] == 225_000
    assert (
        band_quote(db_session, make_case(client, principal=300_000, status="disputed"), TODAY)
        is None
    )
