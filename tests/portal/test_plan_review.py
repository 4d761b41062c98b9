"""The debtor sees the whole schedule before a plan exists: choosing the terms writes nothing,
only confirming the schedule shown sets the plan up. And the pay page starts at the plan's next
installment."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.plans import PaymentPlan, create_plan
from tests.conftest import csrf_from
from tests.portal.plan_steps import confirm_plan, review_plan

TODAY = dt.date(2026, 11, 23)
STAFF = audit.Actor(None, "test")
TERMS = {"frequency": "monthly", "count": "4", "first_on": "2026-11-30"}


def nothing_written(db_session, case) -> bool:
    db_session.expire_all()
    plans = db_session.scalars(sa.select(PaymentPlan)).all()
    events = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "plan.created")
    ).all()
    return not plans and not events and case.status == "active"


def url(case) -> str:
    return f"/portal/cases/{case.reference}/plan"


def test_the_review_shows_every_payment_and_its_total_and_writes_nothing(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_001)
    signed_in(case)

    review = review_plan(client, url(case), {**TERMS, "down_payment": "100.00"})

    assert review.status_code == 200
    page = review.get_data(as_text=True)
    assert "The plan is not set up until you confirm it." in page
    rows = re.findall(r'<td data-label="Due">([^<]+)</td><td class="num"[^>]*>([^<]+)</td>', page)
    # The down payment on the first date, then four equal payments (the last takes the cent).
    assert rows == [
        ("November 30, 2026", "$100.00"),
        ("December 30, 2026", "$225.00"),
        ("January 30, 2027", "$225.00"),
        ("February 28, 2027", "$225.00"),
        ("March 30, 2027", "$225.01"),
    ]
    assert "<strong>$1,000.01</strong>" in page
    assert 'value="confirm"' in page and "Set up the plan" in page
    # Without autopay, no card authorisation is asked for.
    assert "I authorise" not in page

    # The debtor leaves at the review step: no plan, the case as it was.
    account = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert nothing_written(db_session, case)
    assert "Set up a payment plan" in account and "Your payment plan" not in account


def test_with_autopay_the_authorisation_follows_the_schedule_it_refers_to(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)

    page = review_plan(client, url(case), {**TERMS, "autopay": "y"}).get_data(as_text=True)

    schedule, authorisation = page.index('id="schedule"'), page.index("I authorise")
    assert schedule < authorisation
    assert "in the amounts shown in the schedule" in page
    assert page.count('data-label="Due"') == 4
    assert nothing_written(db_session, case)


def test_confirming_the_schedule_shown_sets_the_plan_up_as_shown(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)

    response = confirm_plan(client, url(case), TERMS)

    assert response.status_code == 302
    plan = db_session.scalars(sa.select(PaymentPlan)).one()
    assert [(i.due_on.isoformat(), i.amount_cents) for i in plan.installments] == [
        ("2026-11-30", 25_000),
        ("2026-12-30", 25_000),
        ("2027-01-30", 25_000),
        ("2027-02-28", 25_000),
    ]
    assert case.status == "plan" and plan.consented_at is not None


def test_a_schedule_that_changed_since_it_was_shown_is_not_confirmed(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)
    review = review_plan(client, url(case), TERMS)
    shown = re.search(r'name="shown" value="([^"]*)"', review.get_data(as_text=True)).group(1)

    # Another amount than the one shown (as if the balance changed in between).
    stale = shown.replace(":25000", ":20000")
    response = client.post(
        url(case),
        data={**TERMS, "csrf_token": csrf_from(review), "action": "confirm", "shown": stale},
    )

    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The schedule has changed. Please look at it again before you confirm." in page
    assert page.count('data-label="Due"') == 4  # the schedule as it is now, to look at again
    assert nothing_written(db_session, case)


def test_bad_terms_are_refused_on_the_first_step_with_the_reason(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=10_000)
    signed_in(case)

    response = review_plan(client, url(case), {**TERMS, "count": "6"})

    assert response.status_code == 400
    assert "Each payment must be at least $25.00. Choose fewer payments." in response.get_data(
        as_text=True
    )
    assert nothing_written(db_session, case)


def test_change_goes_back_to_the_terms_as_chosen(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)
    review = review_plan(client, url(case), {**TERMS, "count": "5"})

    response = client.post(
        url(case), data={**TERMS, "count": "5", "csrf_token": csrf_from(review), "action": "change"}
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="count" type="number" value="5"' in page or 'value="5"' in page
    assert "See the schedule" in page
    assert nothing_written(db_session, case)


def test_pay_now_on_a_plan_starts_at_the_next_installment(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    plan = create_plan(
        db_session,
        case,
        frequency="monthly",
        count=3,
        first_on=TODAY + dt.timedelta(days=7),
        today=TODAY,
        actor=STAFF,
        down_payment_cents=10_000,
    )
    db_session.flush()
    signed_in(case)

    page = client.get(f"/portal/cases/{case.reference}/pay").get_data(as_text=True)

    assert re.search(r'name="amount"[^>]*value="100.00"', page), page
    assert "Your next plan payment: $100.00, due on November 30, 2026." in page

    plan.installments[0].status = "paid"
    case.stamp += 1
    db_session.flush()
    page = client.get(f"/portal/cases/{case.reference}/pay").get_data(as_text=True)
    assert re.search(r'name="amount"[^>]*value="300.00"', page), page
    assert "due on December 30, 2026" in page  # the first monthly one after the down payment


def test_without_a_plan_pay_now_starts_at_the_balance(
    client, signed_in, make_client, make_case, db_session
):
    case = make_case(make_client(), status="active", principal=100_000)
    signed_in(case)

    page = client.get(f"/portal/cases/{case.reference}/pay").get_data(as_text=True)

    assert re.search(r'name="amount"[^>]*value="1,?000.00"', page), page
    assert "Your next plan payment" not in page
