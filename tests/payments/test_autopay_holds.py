"""A hold never breaks a plan, against a real local Stripe (localstripe): autopay charges
nothing while a dispute holds the case, and no installment due then is missed; when the hold
ends the rest of the schedule moves, the debtor confirms the new dates in the portal and
autopay charges them; left unconfirmed 10 days, the plan lapses (not broken), the case goes
back to `active`, and no "missed" reminder was sent."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.disputes import record_dispute, send_verification
from cases.documents import Document
from cases.plans import Installment, PaymentPlan
from cases.reminders import SentReminder
from payments.autopay import charge_due
from tests.conftest import TEST_ACTOR, csrf_from
from tests.payments import test_autopay
from tests.payments.test_autopay import TODAY, charge
from tests.payments.test_gateway import DECLINED
from tests.payments.test_portal_pay import portal_stripe  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("portal_stripe")
autopay_case = test_autopay.autopay_case  # a fixture: a case on a monthly autopay plan
NY = ZoneInfo("America/New_York")


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def at(day: dt.date, hour: int = 10):
    """That day at `hour` in New York (the debtor's and the agency's time)."""
    return time_machine.travel(dt.datetime.combine(day, dt.time(hour), NY), tick=False)


def hold(db_session, case) -> None:
    """A dispute inside the validation period, the day before the first installment."""
    case.validation_period_ends_on = days(20)
    record_dispute(
        db_session,
        case,
        reason="not my debt",
        channel="call",
        received_at=dt.datetime(2026, 11, 22, 15, tzinfo=dt.UTC),
        actor=TEST_ACTOR,
    )
    db_session.commit()
    assert case.status == "disputed"


def lift(db_session, case, on: dt.date) -> None:
    """Verification sent on `on` (as the case screen sends it): the hold ends."""
    with at(on):
        send_verification(db_session, case, document_id=None, actor=TEST_ACTOR)
        db_session.commit()


def events(db_session, case) -> list[str]:
    return db_session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id)
    ).all()


def hidden(page: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
    return re.search(r'value="([^"]*)"', tag).group(1)


def test_an_installment_due_during_the_hold_is_not_charged_and_the_plan_is_not_broken(
    cli, client, signed_in, db_session, autopay_case, gateway
):
    case, plan = autopay_case()  # the first $250 due today
    hold(db_session, case)

    for n in (0, 3, 10, 11, 25):  # 10 days past due would break a plan in force
        output = json.loads(charge(cli, days(n), "--json"))
        assert (output["charged"], output["failed"], output["broken"]) == (0, 0, 0)

    db_session.expire_all()
    plan = db_session.get(PaymentPlan, plan.id)
    assert (plan.status, plan.case_id) == ("paused", case.id)
    assert db_session.get(type(case), case.id).status == "disputed"
    assert [i.status for i in plan.installments] == ["scheduled"] * 4  # none missed
    assert gateway.find_payment_intents(case_reference=case.reference) == []
    assert "plan.paused" in events(db_session, case)
    assert "plan.broken" not in events(db_session, case)
    page = signed_in(case).get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Your payment plan is paused while we review your dispute" in page
    assert "Autopay is on" not in page


def test_when_the_hold_lifts_the_debtor_confirms_the_new_dates_and_autopay_charges_them(
    cli, client, signed_in, db_session, autopay_case, gateway
):
    case, plan = autopay_case()  # due 11-23, 12-23, 01-23, 02-23
    hold(db_session, case)
    charge(cli, TODAY)
    lifted = days(7)  # 2026-11-30: the first installment fell due during the hold

    lift(db_session, case, lifted)

    new_dates = [dt.date(2026, 12, 10), dt.date(2027, 1, 10), dt.date(2027, 2, 10)]
    new_dates.append(dt.date(2027, 3, 10))
    assert [i.due_on for i in plan.installments] == new_dates  # nothing due in the past
    assert (case.status, plan.status, plan.reconfirm_by) == ("plan", "paused", new_dates[0])
    with at(lifted):
        signed_in(case)
        page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
        assert "Please confirm them by December 10, 2026" in page
        assert f'href="/portal/plans/{plan.id}/new-dates"' in page
        url = f"/portal/plans/{plan.id}/new-dates"
        form = client.get(url)
        text = form.get_data(as_text=True)
        assert form.status_code == 200
        assert "2026-12-10" in text and "2027-03-10" in text and "$250.00" in text
        assert "I agree to pay the rest of my payment plan on these new dates" in text
        without_token = client.post(url, data={"dates": hidden(text, "dates")})
        assert without_token.status_code == 400  # CSRF
        db_session.refresh(plan)
        assert plan.status == "paused"

        done = client.post(
            url, data={"csrf_token": csrf_from(form), "dates": hidden(text, "dates")}
        )
        again = client.get(url)

    assert done.status_code == 302
    assert done.headers["Location"] == f"/portal/cases/{case.reference}"
    assert again.headers["Location"] == f"/portal/cases/{case.reference}"  # nothing to confirm
    db_session.refresh(plan)
    assert (plan.status, plan.reconfirm_by) == ("active", None)
    assert plan.consent_text.startswith(
        "I agree to pay the rest of my payment plan on these new dates: December 10, 2026 $250.00; "
    )
    assert "I authorise" in plan.consent_text  # the card's use on those dates
    agreements = db_session.scalars(
        sa.select(Document).where(Document.case_id == case.id, Document.kind == "plan_agreement")
    ).all()
    assert len(agreements) == 1  # the agreement as it now stands, with the new dates

    assert json.loads(charge(cli, new_dates[0] - dt.timedelta(days=1), "--json"))["charged"] == 0
    assert json.loads(charge(cli, new_dates[0], "--json"))["charged"] == 1

    first = db_session.get(Installment, plan.installments[0].id)
    db_session.refresh(first)
    assert (first.status, first.due_on, first.attempts) == ("paid", new_dates[0], 1)
    [intent] = gateway.find_payment_intents(case_reference=case.reference)
    assert intent.metadata["idempotency_key"] == f"installment-{first.id}-attempt-1"
    trail = events(db_session, case)
    for action in ("plan.paused", "plan.rescheduled", "plan.confirmed", "installment.paid"):
        assert action in trail
    assert trail.index("plan.paused") < trail.index("plan.rescheduled")
    assert trail.index("plan.rescheduled") < trail.index("plan.confirmed")
    assert "plan.broken" not in trail


def test_the_dates_confirmed_are_the_dates_shown(cli, client, signed_in, db_session, autopay_case):
    case, plan = autopay_case()
    hold(db_session, case)
    lift(db_session, case, days(7))
    with at(days(7)):
        signed_in(case)
        url = f"/portal/plans/{plan.id}/new-dates"
        form = client.get(url)

        stale = client.post(url, data={"csrf_token": csrf_from(form), "dates": "2026-12-01"})

    assert stale.status_code == 400
    assert "The dates of your plan have changed" in stale.get_data(as_text=True)
    db_session.refresh(plan)
    assert plan.status == "paused"


def test_without_confirmation_nothing_is_charged_and_after_10_days_the_plan_goes_back_to_the_queue(
    app, cli, db_session, autopay_case, gateway, smtp_server
):
    case, plan = autopay_case()  # the first $250 due 2026-11-23
    hold(db_session, case)
    lifted = days(3)  # 2026-11-26: the first installment is 3 days late, in "missed" range
    lift(db_session, case, lifted)
    deadline = lifted + dt.timedelta(days=10)
    assert plan.reconfirm_by == deadline == plan.installments[0].due_on

    day = lifted + dt.timedelta(days=1)
    while day <= deadline:  # the reminders job and the daily autopay run, every day
        with at(day):
            result = cli.invoke(args=["reminders", "send", "--as-of", day.isoformat()])
            assert result.exit_code == 0, result.output
            output = json.loads(charge(cli, day, "--json"))
        assert (output["charged"], output["broken"]) == (0, 0)
        day += dt.timedelta(days=1)
    db_session.refresh(plan)
    assert plan.status == "paused"  # the last day to confirm: not lapsed yet

    with at(deadline + dt.timedelta(days=1)):
        output = json.loads(charge(cli, deadline + dt.timedelta(days=1), "--json"))

    assert (output["charged"], output["broken"]) == (0, 0)
    db_session.expire_all()
    plan = db_session.get(PaymentPlan, plan.id)
    assert plan.status == "lapsed"
    assert db_session.get(type(case), case.id).status == "active"  # on the collector's queue
    assert [i.status for i in plan.installments] == ["scheduled"] * 4  # none missed
    assert gateway.find_payment_intents(case_reference=case.reference) == []
    reminders = db_session.scalars(
        sa.select(SentReminder.kind).where(SentReminder.case_id == case.id)
    ).all()
    assert "installment_missed" not in reminders
    lapsed = db_session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.case_id == case.id, AuditEvent.action == "plan.lapsed"
        )
    ).one()
    assert lapsed.reason == "not re-confirmed after the dispute hold"
    trail = events(db_session, case)
    assert [a for a in trail if a.startswith("plan.")] == [
        "plan.created",
        "plan.card_saved",
        "plan.paused",
        "plan.rescheduled",
        "plan.lapsed",
    ]


def test_a_charge_interrupted_as_the_hold_began_is_reconciled_not_missed(
    cli, db_session, autopay_case, gateway
):
    case, plan = autopay_case(number=DECLINED)
    first_id = plan.installments[0].id

    class Killed(Exception):
        pass

    def kill(intent):
        raise Killed(intent.id)

    with pytest.raises(Killed):
        charge_due(db_session, gateway, today=TODAY, zone=dt.UTC, after_charge=kill)
    db_session.rollback()  # declined at Stripe, not recorded here
    hold(db_session, case)

    output = json.loads(charge(cli, days(1), "--json"))

    assert (output["charged"], output["needs_authentication"], output["broken"]) == (0, 0, 0)
    first = db_session.get(Installment, first_id)
    db_session.refresh(first)
    assert (first.status, first.last_error, first.next_attempt_on) == (
        "failed",
        "card_declined",
        None,  # no retry during the hold
    )
    assert len(gateway.find_payment_intents(case_reference=case.reference)) == 1
    assert json.loads(charge(cli, days(12), "--json"))["broken"] == 0
    lift(db_session, case, days(14))
    db_session.refresh(first)
    assert (first.status, first.due_on) == ("scheduled", days(24))
