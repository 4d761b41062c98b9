"""The ledger service: payments with their fees, reversals, adjustments, nothing twice."""

import datetime as dt

import pytest
import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from payments.fees import FeeSchedule, current_schedule, fee_cents, set_schedule
from payments.posting import (
    DuplicatePosting,
    LedgerEntry,
    LedgerError,
    ReceivedDateError,
    balance_cents,
    post_adjustment,
    post_instrument,
    post_payment,
    reverse_payment,
)
from payments.unmatched import UnmatchedPayment, hold_unmatched
from tests.conftest import csrf_from

ACTOR = audit.Actor(None, "test")
DAY = dt.date(2026, 11, 20)


def pay(session, case, amount, ref, **kw):
    return post_payment(
        session, case, amount, external_id=ref, received_at=DAY, method="check", actor=ACTOR, **kw
    )


@pytest.mark.parametrize(
    ("days", "bps"), [(90, 2500), (180, 2500), (181, 3300), (365, 3300), (366, 4000), (900, 4000)]
)
def test_the_fee_uses_the_tier_of_the_case_age_at_referral(
    db_session, make_client, make_case, days, bps
):
    case = make_case(make_client(), principal=100_000, days_past_due=days)
    entry = pay(db_session, case, 10_000, "chk-1")
    assert (entry.fee_bps, entry.fee_cents) == (bps, 10_000 * bps // 10_000)


def test_fees_round_half_up_per_payment(db_session, make_client, make_case):
    assert fee_cents(1_001, 2500) == 250  # 250.25
    assert fee_cents(1_002, 2500) == 251  # 250.50
    assert fee_cents(-1_002, 2500) == -251
    case = make_case(make_client(), principal=100_000, days_past_due=120)
    assert pay(db_session, case, 1_002, "a").fee_cents == 251


def test_a_payment_of_the_whole_balance_marks_the_case_paid(db_session, make_client, make_case):
    case = make_case(make_client(), principal=50_000, status="active")
    pay(db_session, case, 20_000, "a")
    assert case.status == "active"
    pay(db_session, case, 30_000, "b")
    assert balance_cents(db_session, case.id) == 0 and case.status == "paid"


def test_overpayments_and_bad_amounts_are_refused_unless_the_money_already_arrived(
    db_session, make_client, make_case
):
    case = make_case(make_client(), principal=10_000, status="active")
    for amount, message in (
        (10_001, "more than the balance"),
        (0, "positive"),
        (-5, "positive"),
        (12.5, "positive"),
    ):
        with pytest.raises(LedgerError, match=message):
            pay(db_session, case, amount, f"x{amount}")
    assert balance_cents(db_session, case.id) == 10_000
    pay(db_session, case, 12_000, "card-1", allow_overpayment=True)
    assert balance_cents(db_session, case.id) == -2_000  # a credit to refund
    assert case.status == "paid"


def test_an_external_id_is_posted_once(db_session, make_client, make_case):
    case = make_case(make_client(), principal=10_000)
    pay(db_session, case, 1_000, "chk-77")
    with pytest.raises(DuplicatePosting):
        pay(db_session, case, 1_000, "chk-77")
    assert balance_cents(db_session, case.id) == 9_000


def test_partial_then_full_reversal_gives_back_exactly_the_fee(db_session, make_client, make_case):
    case = make_case(make_client(), principal=10_001, status="active", days_past_due=120)
    payment = pay(db_session, case, 10_001, "card-9")
    assert case.status == "paid" and payment.fee_cents == 2_500  # 2500.25 -> 2500
    first = reverse_payment(
        db_session,
        payment,
        amount_cents=3_333,
        external_id="re-1",
        received_at=DAY,
        reason="partial refund",
        actor=ACTOR,
    )
    assert first.amount_cents == 3_333 and case.status == "active"
    with pytest.raises(LedgerError, match="left to reverse"):
        reverse_payment(
            db_session,
            payment,
            amount_cents=9_000,
            external_id="re-x",
            received_at=DAY,
            reason="too much",
            actor=ACTOR,
        )
    rest = reverse_payment(
        db_session,
        payment,
        amount_cents=None,
        external_id="re-2",
        received_at=DAY,
        reason="chargeback",
        actor=ACTOR,
    )
    assert rest.amount_cents == 6_668
    assert first.fee_cents + rest.fee_cents == -payment.fee_cents
    assert balance_cents(db_session, case.id) == 10_001
    with pytest.raises(LedgerError, match="say why"):
        reverse_payment(
            db_session,
            payment,
            amount_cents=1,
            external_id="re-3",
            received_at=DAY,
            reason=" ",
            actor=ACTOR,
        )


def test_adjustments_move_the_balance_with_a_reason(db_session, make_client, make_case):
    case = make_case(make_client(), principal=10_000)
    post_adjustment(db_session, case, -2_500, reason="goodwill", received_at=DAY, actor=ACTOR)
    assert balance_cents(db_session, case.id) == 7_500
    with pytest.raises(LedgerError):
        post_adjustment(db_session, case, 0, reason="x", received_at=DAY, actor=ACTOR)
    with pytest.raises(LedgerError):
        post_adjustment(db_session, case, 5, reason="", received_at=DAY, actor=ACTOR)


def test_entries_are_append_only(db_session, make_client, make_case):
    case = make_case(make_client(), principal=10_000)
    entry = pay(db_session, case, 1_000, "a")
    entry.amount_cents = -1
    with pytest.raises(RuntimeError, match="append-only"):
        db_session.flush()
    db_session.rollback()
    assert db_session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0


def test_the_service_refuses_a_payment_dated_after_today_whoever_calls_it(
    db_session, make_client, make_case
):
    case = make_case(make_client(), principal=50_000, status="active")
    with pytest.raises(ReceivedDateError, match="cannot be in the future"):
        post_payment(
            db_session,
            case,
            1_000,
            external_id="check:9001",
            received_at=DAY + dt.timedelta(days=1),
            method="check",
            actor=ACTOR,
            today=DAY,
        )
    # Without the agency's day, UTC's date bounds it: a date years ahead is refused all the same.
    with pytest.raises(ReceivedDateError, match="cannot be in the future"):
        post_payment(
            db_session,
            case,
            1_000,
            external_id="check:9002",
            received_at=dt.date(2099, 1, 1),
            method="check",
            actor=ACTOR,
        )
    assert balance_cents(db_session, case.id) == 50_000
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")
        )
        == 0
    )
    entry = pay(db_session, case, 1_000, "check:9003", today=DAY)  # today itself is fine
    assert entry.received_at == DAY


def test_money_held_unmatched_cannot_be_dated_after_today(db_session):
    with pytest.raises(ReceivedDateError, match="cannot be in the future"):
        hold_unmatched(
            db_session,
            external_id="check:7001",
            amount_cents=15_000,
            received_at=DAY + dt.timedelta(days=3),
            method="check",
            actor=ACTOR,
            today=DAY,
        )
    assert db_session.scalar(sa.select(sa.func.count()).select_from(UnmatchedPayment)) == 0


def test_a_reversal_cannot_be_dated_after_today(db_session, make_client, make_case):
    case = make_case(make_client(), principal=50_000, status="active")
    payment = pay(db_session, case, 10_000, "check:9100", today=DAY)
    with pytest.raises(ReceivedDateError, match="cannot be in the future"):
        reverse_payment(
            db_session,
            payment,
            amount_cents=None,
            external_id="reversal:9100",
            received_at=DAY + dt.timedelta(days=2),
            reason="the check bounced",
            actor=ACTOR,
            today=DAY,
        )
    assert balance_cents(db_session, case.id) == 40_000


@pytest.mark.parametrize("amount", [0, -100, 1.5, True])
def test_money_held_unmatched_must_be_a_positive_number_of_cents(db_session, amount):
    with pytest.raises(LedgerError, match="positive number of cents"):
        hold_unmatched(
            db_session,
            external_id="check:7002",
            amount_cents=amount,
            received_at=DAY,
            method="check",
            actor=ACTOR,
            today=DAY,
        )
    assert db_session.scalar(sa.select(sa.func.count()).select_from(UnmatchedPayment)) == 0


def test_the_same_fee_schedule_again_makes_no_new_version(db_session, make_client):
    client = make_client()
    before = db_session.scalar(sa.select(sa.func.count()).select_from(FeeSchedule))
    same = current_schedule(db_session, client.id)
    tiers = [(t.min_days, t.bps) for t in same.tiers]
    assert set_schedule(db_session, client, tiers, actor=ACTOR, legal_bps=same.legal_bps) is same
    assert db_session.scalar(sa.select(sa.func.count()).select_from(FeeSchedule)) == before
    changed = set_schedule(db_session, client, [(90, 2000)], actor=ACTOR)
    assert changed is not same and changed.describe() == "90=2000"
    with pytest.raises(ValueError, match="never negative"):
        set_schedule(db_session, client, [(90, -5)], actor=ACTOR)


# -- nothing before the case's referral (SPEC "Money") ------------------------------------------
REFERRED = dt.date(2026, 11, 2)  # make_case's referral date
ITEMISED = REFERRED - dt.timedelta(days=120)  # its due date, the itemisation date: 2026-07-05


def movements(session, case) -> list[tuple[str, int, dt.date]]:
    return [
        (e.kind, e.amount_cents, e.received_at)
        for e in session.scalars(
            sa.select(LedgerEntry)
            .where(LedgerEntry.case_id == case.id, LedgerEntry.kind != "placement")
            .order_by(LedgerEntry.id)
        )
    ]


def posted_events(session) -> int:
    return session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action.like("%.posted"))
    )


def test_a_payment_cannot_be_dated_before_the_case_was_referred_whoever_posts_it(
    db_session, make_client, make_case
):
    case = make_case(make_client(), principal=50_000, status="active", days_past_due=120)
    assert (case.referred_on, case.itemization_date) == (REFERRED, ITEMISED)
    events = posted_events(db_session)
    the_day_before = REFERRED - dt.timedelta(days=1)
    refused = "cannot be before the case was referred \\(2026-11-02\\)"
    with pytest.raises(ReceivedDateError, match=refused):
        post_payment(
            db_session,
            case,
            1_000,
            external_id="check:9200",
            received_at=the_day_before,
            method="check",
            actor=ACTOR,
            today=DAY,
        )
    with pytest.raises(ReceivedDateError, match=refused):  # the case screen's and API's path
        post_instrument(
            db_session,
            [(case, 1_000)],
            method="check",
            number="9201",
            received_at=the_day_before,
            actor=ACTOR,
            today=DAY,
        )
    with pytest.raises(ReceivedDateError, match=refused):
        post_adjustment(
            db_session,
            case,
            -1_000,
            reason="goodwill",
            received_at=the_day_before,
            actor=ACTOR,
        )
    # Nothing changed: no entry, no audit, the same balance and status.
    assert movements(db_session, case) == []
    assert posted_events(db_session) == events
    assert balance_cents(db_session, case.id) == 50_000 and case.status == "active"
    # The referral date itself is fine, for a payment and an adjustment.
    post_payment(
        db_session,
        case,
        1_000,
        external_id="check:9202",
        received_at=REFERRED,
        method="check",
        actor=ACTOR,
        today=DAY,
    )
    post_adjustment(db_session, case, -500, reason="goodwill", received_at=REFERRED, actor=ACTOR)
    assert movements(db_session, case) == [
        ("payment", -1_000, REFERRED),
        ("adjustment", -500, REFERRED),
    ]
    assert balance_cents(db_session, case.id) == 48_500


def direct_pay(session, case, ref, day):
    return post_payment(
        session,
        case,
        2_000,
        external_id=ref,
        received_at=day,
        method="check",
        actor=ACTOR,
        direct=True,
        today=DAY,
    )


def test_a_direct_payment_may_be_for_the_time_before_referral_but_not_before_itemisation(
    db_session, make_client, make_case
):
    case = make_case(make_client(), principal=50_000, status="active", days_past_due=120)
    events = posted_events(db_session)
    with pytest.raises(
        ReceivedDateError, match="direct payment cannot be dated before the itemisation date"
    ):
        direct_pay(db_session, case, "direct:ACME:early", ITEMISED - dt.timedelta(days=1))
    assert movements(db_session, case) == []
    assert posted_events(db_session) == events
    assert balance_cents(db_session, case.id) == 50_000
    # Paid to the client before the referral, after the itemisation date (or on it): posted.
    for ref, day in (("direct:ACME:oct", dt.date(2026, 10, 15)), ("direct:ACME:jul", ITEMISED)):
        direct_pay(db_session, case, ref, day)
    assert movements(db_session, case) == [
        ("direct_payment", -2_000, dt.date(2026, 10, 15)),
        ("direct_payment", -2_000, ITEMISED),
    ]
    assert balance_cents(db_session, case.id) == 46_000


def test_money_that_already_arrived_is_not_refused_for_its_date_before_referral(
    db_session, make_client, make_case
):
    """A card payment Stripe took (dated by Stripe) or unmatched money matched later is
    posted as it came (allow_overpayment); the rule is for payments posted by people."""
    case = make_case(make_client(), principal=50_000, status="active")
    early = REFERRED - dt.timedelta(days=3)
    post_payment(
        db_session,
        case,
        1_000,
        external_id="pi_early",
        received_at=early,
        method="card",
        actor=ACTOR,
        allow_overpayment=True,
    )
    assert movements(db_session, case) == [("payment", -1_000, early)]


def test_the_case_screen_refuses_a_payment_before_referral_and_says_why(
    client, login, make_user, make_client, make_case, db_session
):
    login(make_user("collector"))
    case = make_case(make_client(), principal=30_000, status="active")
    page = client.get(f"/agency/cases/{case.reference}")
    response = client.post(
        f"/agency/cases/{case.reference}/payments",
        data={
            "pay-amount": "100.00",
            "pay-received_at": "2026-11-01",
            "pay-method": "check",
            "pay-reference": "5601",
            "csrf_token": csrf_from(page),
        },
    )
    assert response.status_code == 422
    assert "the date received cannot be before the case was referred (2026-11-02)" in (
        response.get_data(as_text=True)
    )
    assert movements(db_session, case) == []
    assert balance_cents(db_session, case.id) == 30_000
