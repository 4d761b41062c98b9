"""A fee schedule edited by an admin applies to payments posted after it, never to history;
the statement shows each payment at the rate it was charged."""

import datetime as dt

import sqlalchemy as sa

from cases import audit
from cases.audit import AuditEvent
from cases.ledger import LedgerEntry
from correspondence.statement_mail import issue_statement
from payments.posting import post_payment, reverse_payment
from payments.statements import Month
from tests.agency.test_admin import CLIENT_FORM, post_form, tiers

ACTOR = audit.Actor(None, "test")


def pay(session, case, cents, ref):
    return post_payment(
        session,
        case,
        cents,
        external_id=ref,
        received_at=dt.date(2026, 10, 20),
        method="check",
        actor=ACTOR,
    )


def test_a_new_schedule_applies_only_to_later_postings(
    client, login, make_user, db_session, make_client, make_case
):
    acme = make_client("ACME", "Acme Plumbing", tiers="90=2500,181=3300,366=4000")
    # Referred before the October payments posted on them (fee tiers follow days_past_due).
    referred = dt.date(2026, 10, 1)
    young = make_case(
        acme, principal=100_000, status="active", days_past_due=120, referred_on=referred
    )
    legal = make_case(
        acme, principal=100_000, status="active", days_past_due=400, referred_on=referred
    )
    legal.in_legal = True
    before = pay(db_session, young, 10_000, "before")
    login(make_user("admin"))
    response = post_form(
        client,
        "/agency/clients/ACME",
        {
            **CLIENT_FORM,
            **tiers(("90", "30%"), ("181", "35%")),
            "legal_fee": "45%",
            "active": "y",
        },
    )
    assert response.status_code == 302
    event = db_session.scalar(
        sa.select(AuditEvent)
        .where(AuditEvent.action == "fee_schedule.set")
        .order_by(AuditEvent.id.desc())
    )
    assert event.detail == {"tiers": "90=3000,181=3500", "legal_bps": 4500}
    page = client.get("/agency/clients/ACME").get_data(as_text=True)
    assert "90+ days: 30.00%" in page and "(current)" in page and "90+ days: 25.00%" in page

    after = pay(db_session, young, 10_000, "after")
    in_legal = pay(db_session, legal, 10_000, "legal")
    # Reversing the old payment gives back the fee it earned, at its own rate.
    refund = reverse_payment(
        db_session,
        before,
        amount_cents=None,
        external_id="refund",
        received_at=dt.date(2026, 10, 21),
        reason="refund",
        actor=ACTOR,
    )
    db_session.refresh(before)
    assert (before.fee_bps, before.fee_cents) == (2500, 2_500)  # history unchanged
    assert (after.fee_bps, after.fee_cents) == (3000, 3_000)
    assert (in_legal.fee_bps, in_legal.fee_cents) == (4500, 4_500)
    assert (refund.fee_bps, refund.fee_cents) == (2500, -2_500)
    statement = issue_statement(db_session, acme, Month(2026, 10), actor=ACTOR).statement
    rates = sorted((line.kind, line.fee_bps, line.fee_cents) for line in statement.lines)
    assert rates == [
        ("payment", 2500, 2_500),
        ("payment", 3000, 3_000),
        ("payment", 4500, 4_500),
        ("reversal", 2500, -2_500),
    ]
    assert statement.fees == 7_500
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")
        )
        == 3
    )
