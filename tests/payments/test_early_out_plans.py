"""A short plan on the client's branded early-out page (issue #20): within the client's terms
(default up to 3 monthly payments), the debtor sees every date and amount before confirming and
nothing is written before; payments go through the same card flow; a plan in good standing holds
the reminders and the conversion, a broken one lets the conversion proceed."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from cases.audit import AuditEvent
from cases.early_out import set_terms
from cases.plans import PaymentPlan
from cases.reminders import due_reminders
from payments.posting import post_payment
from tests.conftest import TEST_ACTOR, csrf_from
from tests.payments.test_early_out_pay import VISA, _branded, _placed
from tests.payments.test_portal_pay import card_token, intent_id, portal_stripe

__all__ = ["portal_stripe"]

from tests.cases.test_early_out import DUE, _run  # noqa: E402


def _plans(db_session, case) -> list[PaymentPlan]:
    return list(db_session.scalars(sa.select(PaymentPlan).where(PaymentPlan.case_id == case.id)))


def _set_up(client, link, count: int) -> str:
    page = client.get(f"{link}/plan")
    token = csrf_from(page)
    review = client.post(
        f"{link}/plan", data={"count": str(count), "action": "review", "csrf_token": token}
    )
    assert review.status_code == 200, review.get_data(as_text=True)
    shown = re.search(r'name="shown" value="([^"]*)"', review.get_data(as_text=True)).group(1)
    done = client.post(
        f"{link}/plan",
        data={"count": str(count), "action": "confirm", "shown": shown, "csrf_token": token},
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    return done.headers["Location"]


def test_the_debtor_reviews_then_confirms_a_plan_and_pays_the_first_by_card(
    app, client, cli, db_session, make_client, tmp_path, portal_stripe
):
    make_client()
    case, link = _placed(cli, db_session, tmp_path)
    account = client.get(link).get_data(as_text=True)
    assert "Pay in up to 3 payments, monthly." in account and f"{link}/plan" in account

    page = client.get(f"{link}/plan")
    assert page.status_code == 200
    _branded(app, page.get_data(as_text=True))
    token = csrf_from(page)

    # Beyond the client's terms: refused, nothing written.
    refused = client.post(
        f"{link}/plan", data={"count": "4", "action": "review", "csrf_token": token}
    )
    assert refused.status_code == 400 and "Choose fewer payments" in refused.get_data(as_text=True)
    # Without the page's token: refused.
    assert client.post(f"{link}/plan", data={"count": "3", "action": "review"}).status_code == 400

    review = client.post(
        f"{link}/plan", data={"count": "3", "action": "review", "csrf_token": token}
    )
    text = review.get_data(as_text=True)
    assert review.status_code == 200
    _branded(app, text)
    assert "3 payments, monthly, $250.00 in all. Nothing is set up until you confirm." in text
    for day, amount in (
        ("November 23, 2026", "$83.33"),
        ("December 23, 2026", "$83.33"),
        ("January 23, 2027", "$83.34"),
    ):
        assert day in text and amount in text
    assert _plans(db_session, case) == []  # nothing written before the confirmation

    # A schedule other than the one shown is not set up.
    stale = client.post(
        f"{link}/plan",
        data={"count": "3", "action": "confirm", "shown": "2026-11-23:25000", "csrf_token": token},
    )
    assert stale.status_code == 409 and _plans(db_session, case) == []

    shown = re.search(r'name="shown" value="([^"]*)"', text).group(1)
    done = client.post(
        f"{link}/plan",
        data={"count": "3", "action": "confirm", "shown": shown, "csrf_token": token},
    )
    assert done.status_code == 302
    [plan] = _plans(db_session, case)
    assert (plan.status, plan.total_cents, plan.frequency, plan.autopay) == (
        "active",
        25_000,
        "monthly",
        False,
    )
    assert [i.amount_cents for i in plan.installments] == [8_333, 8_333, 8_334]
    assert "Acme Plumbing" in plan.consent_text and plan.consented_at is not None
    [event] = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "plan.created")
    ).all()
    assert event.detail["early_out"] is True and event.case_id == case.id
    db_session.refresh(case)
    assert (case.program, case.status) == ("early_out", "new")

    account = client.get(done.headers["Location"])
    html = account.get_data(as_text=True)
    _branded(app, html)
    assert "Your payments are set up." in html and 'value="83.33"' in html
    # Once on a plan, no second plan.
    assert "Pay in parts" not in html.split("</form>")[0]
    again = client.post(
        f"{link}/plan", data={"count": "2", "action": "review", "csrf_token": token}
    )
    assert again.status_code == 409 and len(_plans(db_session, case)) == 1

    card_page = client.post(link, data={"amount": "83.33", "csrf_token": csrf_from(account)})
    intent = intent_id(card_page.get_data(as_text=True))
    confirmed = client.post(
        f"{link}/payments/{intent}/fake-confirm",
        json={"card": card_token(portal_stripe, VISA)},
        headers={"X-CSRFToken": csrf_from(account)},
    )
    assert confirmed.status_code == 200, confirmed.get_json()
    assert client.get(f"{link}/payments/{intent}").status_code == 200
    db_session.refresh(plan)
    assert [i.status for i in plan.installments] == ["paid", "scheduled", "scheduled"]
    assert 'value="83.33"' in client.get(link).get_data(as_text=True)  # the next payment


def test_a_plan_in_good_standing_holds_conversion_and_a_broken_one_lets_it_go(
    app, client, cli, db_session, make_client, tmp_path
):
    acme = make_client()
    set_terms(db_session, acme, actor=TEST_ACTOR, plan_max_installments=6)
    case, link = _placed(cli, db_session, tmp_path)
    _set_up(client, link, 5)  # $50 a month from November 23
    [plan] = _plans(db_session, case)
    assert [i.due_on.isoformat() for i in plan.installments][:3] == [
        "2026-11-23",
        "2026-12-23",
        "2027-01-23",
    ]
    # Collection reminders never ask for an early-out plan's payments.
    for day in (plan.installments[1].due_on - dt.timedelta(days=2), DUE + dt.timedelta(days=45)):
        assert not [
            r
            for r in due_reminders(db_session, today=day, zone=ZoneInfo("America/New_York"))
            if r.case.id == case.id
        ]
    # No reminder while on the plan (day 15's email would go out otherwise).
    assert _run(cli, 15) == {"sent": 0, "converted": []}
    # Three payments made, by any route, by day 90: in good standing, not converted.
    for n, day in enumerate((DUE + dt.timedelta(days=10), DUE + dt.timedelta(days=40))):
        post_payment(
            db_session,
            case,
            5_000 if n == 0 else 10_000,
            external_id=f"eo-plan-{n}",
            received_at=day,
            method="check",
            actor=TEST_ACTOR,
            today=day,
        )
    assert _run(cli, 90) == {"sent": 0, "converted": []}
    db_session.refresh(plan)
    assert [i.status for i in plan.installments] == ["paid"] * 3 + ["scheduled"] * 2
    assert plan.status == "active"
    # The fourth (February 23) still unpaid 10 days on: the plan breaks and the account converts.
    assert _run(cli, 111) == {"sent": 0, "converted": []}  # March 4: 9 days past February 23
    converted = _run(cli, 114)  # March 7: 12 days past February 23
    assert converted["converted"] == [case.reference]
    db_session.refresh(plan)
    db_session.refresh(case)
    assert plan.status == "broken" and case.program == "collection"
    assert [i.status for i in plan.installments][3:] == ["missed", "missed"]


def test_no_plan_when_the_client_offers_none(client, cli, db_session, make_client, tmp_path):
    acme = make_client()
    set_terms(db_session, acme, actor=TEST_ACTOR, plan_max_installments=0)
    case, link = _placed(cli, db_session, tmp_path)
    account = client.get(link)
    assert f"{link}/plan" not in account.get_data(as_text=True)
    page = client.get(f"{link}/plan")
    assert "Paying in parts is not available for this account." in page.get_data(as_text=True)
    posted = client.post(
        f"{link}/plan", data={"count": "2", "action": "review", "csrf_token": csrf_from(account)}
    )
    assert posted.status_code == 409 and _plans(db_session, case) == []


def test_the_plan_page_in_spanish(client, cli, db_session, make_client, tmp_path):
    make_client()
    case, link = _placed(cli, db_session, tmp_path, language="es")
    page = client.get(f"{link}/plan")
    assert "Pagar a Acme Plumbing en partes" in page.get_data(as_text=True)
    review = client.post(
        f"{link}/plan", data={"count": "2", "action": "review", "csrf_token": csrf_from(page)}
    )
    text = review.get_data(as_text=True)
    assert "2 pagos, mensuales, $250.00 en total." in text and "23 de noviembre de 2026" in text
    assert "debt collector" not in text.lower() and "cobro" not in text.lower()
