"""A paid settlement: payments toward an accepted offer reach its amount, the rest is written
off (no fee), the case is settled and a settled-in-full letter is kept."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from cases import audit
from cases.audit import AuditEvent
from cases.documents import Document
from cases.ledger import LedgerEntry, balance_after, balance_cents
from cases.offers import SettlementOffer, accept_offer, propose_offer
from payments.posting import LedgerError, post_payment, post_settlement_writeoff, reverse_payment
from shell.document_store import read
from tests.conftest import csrf_from, drain_jobs, notice_mailed
from tests.payments.test_portal_pay import (  # noqa: F401 (portal_stripe: a fixture)
    card_token,
    confirm,
    intent_id,
    portal_stripe,
    start_payment,
)


@pytest.fixture
def make_case(make_case):
    """Cases whose validation notice was mailed long ago: offers here may run short (the
    deadlines inside the validation period are tested in tests/cases/test_deadlines.py)."""
    return lambda *args, **kwargs: notice_mailed(make_case(*args, **kwargs))


TODAY = dt.date(2026, 11, 23)
STAFF = audit.Actor(None, "user:collector")
DEBTOR = audit.Actor(None, "debtor:1")


@pytest.fixture
def accepted(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    offer = propose_offer(
        db_session,
        case,
        amount_cents=85_000,
        expires_on=TODAY + dt.timedelta(days=30),
        max_installments=2,
        today=TODAY,
        role="collector",
        actor=STAFF,
    )
    accept_offer(db_session, offer, actor=DEBTOR, today=TODAY, wording="I accept")
    db_session.flush()
    return case, offer


def pay(db_session, case, cents, number):
    return post_payment(
        db_session,
        case,
        cents,
        external_id=f"check:{number}",
        received_at=TODAY,
        method="check",
        actor=STAFF,
    )


def entries(db_session, case, kind):
    return db_session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id, LedgerEntry.kind == kind)
    ).all()


def test_installments_toward_the_offer_settle_the_case(app, db_session, accepted):
    case, offer = accepted
    pay(db_session, case, 40_000, "1")
    assert offer.status == "accepted" and case.status == "active"
    assert entries(db_session, case, "settlement_writeoff") == []
    pay(db_session, case, 45_000, "2")
    assert offer.status == "paid" and case.status == "settled"
    [writeoff] = entries(db_session, case, "settlement_writeoff")
    assert (writeoff.amount_cents, writeoff.fee_cents) == (-15_000, 0)
    assert balance_cents(db_session, case.id) == 0
    changes = db_session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.case_id == case.id, AuditEvent.action == "case.status_changed"
        )
    ).all()
    assert changes[-1].detail["to"] == "settled" and "settlement offer" in changes[-1].reason
    db_session.commit()  # the settled-in-full letter is written after the commit
    drain_jobs(app)
    letter = db_session.scalars(
        sa.select(Document).where(Document.case_id == case.id, Document.kind == "settlement_letter")
    ).one()
    with app.app_context():
        text = PdfReader(io.BytesIO(read(letter))).pages[0].extract_text()
    assert "Settled in full" in text and "$850.00" in text and "$150.00" in text
    assert case.reference in text


def test_a_payment_without_an_accepted_offer_settles_nothing(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    pay(db_session, case, 90_000, "1")
    assert case.status == "active" and balance_cents(db_session, case.id) == 10_000


def test_an_approved_but_not_accepted_offer_settles_nothing(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    propose_offer(
        db_session,
        case,
        amount_cents=85_000,
        expires_on=TODAY + dt.timedelta(days=30),
        today=TODAY,
        role="collector",
        actor=STAFF,
    )
    pay(db_session, case, 85_000, "1")
    assert case.status == "active" and entries(db_session, case, "settlement_writeoff") == []


def test_a_reversed_payment_does_not_count_toward_the_offer(db_session, accepted):
    case, offer = accepted
    first = pay(db_session, case, 50_000, "1")
    reverse_payment(
        db_session,
        first,
        amount_cents=None,
        external_id="bounce:1",
        received_at=TODAY,
        reason="bounced",
        actor=STAFF,
    )
    pay(db_session, case, 50_000, "2")
    assert offer.status == "accepted" and case.status == "active"


def test_a_writeoff_happens_once(db_session, accepted):
    case, offer = accepted
    pay(db_session, case, 85_000, "1")
    with pytest.raises(LedgerError, match="nothing left to write off"):
        post_settlement_writeoff(db_session, case, offer, received_at=TODAY, actor=STAFF)
    assert len(entries(db_session, case, "settlement_writeoff")) == 1


def test_the_expire_command(cli, db_session, accepted):
    case, offer = accepted
    offer.expires_on = TODAY - dt.timedelta(days=1)
    db_session.flush()
    result = cli.invoke(args=["offers", "expire"])
    assert result.output.strip() == "1 offer(s) expired."
    assert db_session.get(SettlementOffer, offer.id).status == "expired"


def test_money_after_the_deadline_does_not_settle(db_session, accepted):
    case, offer = accepted
    post_payment(
        db_session,
        case,
        85_000,
        external_id="check:late",
        received_at=offer.expires_on + dt.timedelta(days=1),
        method="check",
        actor=STAFF,
        today=offer.expires_on + dt.timedelta(days=1),  # posted the day it came
    )
    assert offer.status == "accepted" and case.status == "active"
    assert balance_cents(db_session, case.id) == 15_000


def test_end_to_end_accept_and_pay_by_card(
    app,
    db_session,
    signed_in,
    login,
    make_user,
    make_client,
    make_case,
    portal_stripe,  # noqa: F811 (the fixture imported above)
    gateway,
):
    case = make_case(make_client(), status="active")
    offer = propose_offer(
        db_session,
        case,
        amount_cents=85_000,
        expires_on=TODAY + dt.timedelta(days=14),
        today=TODAY,
        role="collector",
        actor=STAFF,
    )
    db_session.flush()
    client = signed_in(case)
    page = client.get(f"/portal/cases/{case.reference}")
    client.post(
        f"/portal/cases/{case.reference}/offers/{offer.id}/accept",
        data={"csrf_token": csrf_from(page)},
    )
    intent = intent_id(start_payment(client, case, "850.00").get_data(as_text=True))
    assert gateway.retrieve_payment_intent(intent).metadata["offer_id"] == str(offer.id)
    answer = confirm(client, intent, card_token(portal_stripe, "4242424242424242"))
    assert answer.json["status"] == "succeeded"
    assert client.get(f"/portal/payments/{intent}").status_code == 302
    drain_jobs(app)

    db_session.refresh(offer)
    db_session.refresh(case)
    assert (offer.status, case.status) == ("paid", "settled")
    assert balance_cents(db_session, case.id) == 0
    [writeoff] = entries(db_session, case, "settlement_writeoff")
    assert writeoff.amount_cents == -15_000 and writeoff.fee_cents == 0
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Settled in full (PDF)" in page and "Your settlement terms (PDF)" in page
    assert "Pay now" not in page
    letters = db_session.scalars(
        sa.select(Document)
        .where(Document.case_id == case.id, Document.kind == "settlement_letter")
        .order_by(Document.id)
    ).all()
    assert [d.filename.split("-RC")[0] for d in letters] == ["settlement-terms", "settled-in-full"]

    # Staff see both letters on the case screen.
    client.post("/portal/logout", data={"csrf_token": csrf_from(client.get("/portal/"))})
    login(make_user("collector"))
    screen = client.get(f"/agency/cases/{case.reference}").get_data(as_text=True)
    assert f"/agency/documents/{letters[1].id}" in screen and "<td>paid</td>" in screen
    pdf = client.get(f"/agency/documents/{letters[1].id}")
    assert "Settled in full" in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()


def test_the_receipt_of_the_payment_that_settles_states_the_balance_after_the_writeoff(
    db_session, accepted
):
    case, offer = accepted
    first = pay(db_session, case, 30_000, "2001")
    last = pay(db_session, case, 55_000, "2002")  # reaches the $850.00: settled
    assert case.status == "settled" and balance_cents(db_session, case.id) == 0
    assert balance_after(db_session, first) == 70_000
    assert balance_after(db_session, last) == 0  # not the $150.00 written off
