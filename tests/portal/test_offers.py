"""Settlement offers in the portal: seen with the saving and the deadline, accepted with the
wording kept, confirmed by a letter, gone once expired."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from cases import audit
from cases.audit import AuditEvent
from cases.documents import Document
from cases.offers import SettlementOffer, add_band, propose_offer, withdraw_offer
from tests.conftest import csrf_from, notice_mailed
from tests.portal.plan_steps import confirm_plan


@pytest.fixture
def make_case(make_case):
    """Cases whose validation notice was mailed long ago: offers here may run short (the
    deadlines inside the validation period are tested in tests/cases/test_deadlines.py)."""
    return lambda *args, **kwargs: notice_mailed(make_case(*args, **kwargs))


TODAY = dt.date(2026, 11, 23)
STAFF = audit.Actor(None, "user:collector")


@pytest.fixture
def offered(db_session, make_client, make_case):
    case = make_case(make_client(), status="active")
    offer = propose_offer(
        db_session,
        case,
        amount_cents=85_000,
        expires_on=dt.date(2026, 12, 7),
        today=TODAY,
        role="collector",
        actor=STAFF,
    )
    db_session.flush()
    return case, offer


def accept(client, case, offer):
    page = client.get(f"/portal/cases/{case.reference}")
    return client.post(
        f"/portal/cases/{case.reference}/offers/{offer.id}/accept",
        data={"csrf_token": csrf_from(page)},
    )


def test_the_debtor_accepts_and_gets_the_terms_in_a_letter(db_session, signed_in, offered):
    case, offer = offered
    client = signed_in(case)
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert (
        "Pay $850.00 instead of $1,000.00 and save $150.00. Valid until December 7, 2026." in page
    )
    assert "I accept this offer: I will pay $850.00 by December 7, 2026." in page

    response = accept(client, case, offer)
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "You accepted the offer. Pay $850.00 by December 7, 2026 to settle the account." in page
    assert "You accepted this offer on November 23, 2026." in page and "Pay the settlement" in page
    db_session.refresh(offer)
    assert offer.status == "accepted" and offer.accepted_at is not None
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "offer.accepted")
    ).one()
    assert event.actor_label == f"debtor:{case.debtor_id}"
    assert event.detail["wording"].startswith("I accept this offer: I will pay $850.00")

    letter = db_session.scalars(
        sa.select(Document).where(Document.kind == "settlement_letter")
    ).one()
    assert "Your settlement terms (PDF)" in page
    pdf = client.get(f"/portal/cases/{case.reference}/settlement-letters/{letter.id}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert "Settlement agreement" in text and "$850.00" in text and "$150.00" in text
    assert "2026-12-07" in text and case.reference in text

    # Accepting twice changes nothing more.
    again = accept(client, case, offer)
    assert "This offer can no longer be accepted." in client.get(again.location).get_data(
        as_text=True
    )
    assert db_session.scalar(sa.select(sa.func.count(Document.id))) == 1


def test_the_pay_page_starts_at_the_settlement(db_session, signed_in, offered):
    case, offer = offered
    client = signed_in(case)
    accept(client, case, offer)
    page = client.get(f"/portal/cases/{case.reference}/pay").get_data(as_text=True)
    assert "Your settlement: pay $850.00 by December 7, 2026 and the account is settled." in page
    assert 'value="850.00"' in page


def test_in_spanish(db_session, signed_in, offered):
    case, offer = offered
    case.debtor.language = "es"
    client = signed_in(case)
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Acepto esta oferta: pagaré $850.00 a más tardar el 7 de diciembre de 2026." in page
    assert "Aceptar esta oferta" in page
    accept(client, case, offer)
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "offer.accepted")
    ).one()
    assert event.detail["wording"].startswith("Acepto esta oferta")


def test_expired_withdrawn_and_others_offers_cannot_be_accepted(
    db_session, signed_in, offered, make_case, make_client
):
    case, offer = offered
    client = signed_in(case)
    offer.expires_on = TODAY - dt.timedelta(days=1)  # its day passed; the job has not run
    db_session.flush()
    page = client.get(f"/portal/cases/{case.reference}").get_data(as_text=True)
    assert "Offers for you" not in page
    accept(client, case, offer)
    db_session.refresh(offer)
    assert offer.status == "approved" and offer.accepted_at is None

    withdraw_offer(db_session, offer, role="supervisor", actor=STAFF, reason="recalled")
    db_session.flush()
    accept(client, case, offer)
    db_session.refresh(offer)
    assert offer.status == "withdrawn"

    other = make_case(make_client("OTHER", "Other Co"), status="active", last_name="Smith")
    theirs = propose_offer(
        db_session,
        other,
        amount_cents=90_000,
        expires_on=dt.date(2026, 12, 7),
        today=TODAY,
        role="collector",
        actor=STAFF,
    )
    db_session.flush()
    page = client.get(f"/portal/cases/{case.reference}")
    response = client.post(
        f"/portal/cases/{case.reference}/offers/{theirs.id}/accept",
        data={"csrf_token": csrf_from(page)},
    )
    assert response.status_code == 404 and theirs.status == "approved"


def test_the_clients_discount_is_taken_in_the_portal(db_session, signed_in, make_client, make_case):
    client_ = make_client(min_settlement_bps=7000)
    add_band(
        db_session,
        client_,
        min_balance_cents=50_000,
        max_balance_cents=None,
        pay_bps=8000,
        valid_days=14,
        actor=STAFF,
    )
    case = make_case(client_, status="active")
    client = signed_in(case)
    page = client.get(f"/portal/cases/{case.reference}")
    text = page.get_data(as_text=True)
    assert "A discount for you" in text
    assert "settle this account for $800.00 instead of $1,000.00: you save $200.00" in text
    assert "I accept this offer: I will pay $800.00 by December 7, 2026." in text
    response = client.post(
        f"/portal/cases/{case.reference}/discount/accept", data={"csrf_token": csrf_from(page)}
    )
    text = client.get(response.location).get_data(as_text=True)
    assert "You accepted the offer. Pay $800.00 by December 7, 2026 to settle the account." in text
    assert "A discount for you" not in text
    [offer] = db_session.scalars(
        sa.select(SettlementOffer).where(SettlementOffer.case_id == case.id)
    ).all()
    assert (offer.status, offer.amount_cents) == ("accepted", 80_000)
    assert db_session.scalars(sa.select(Document).where(Document.kind == "settlement_letter")).one()
    # Twice: nothing more.
    again = client.post(
        f"/portal/cases/{case.reference}/discount/accept", data={"csrf_token": csrf_from(page)}
    )
    assert "This offer can no longer be accepted." in client.get(again.location).get_data(
        as_text=True
    )
    assert db_session.scalar(sa.select(sa.func.count(SettlementOffer.id))) == 1


def pdf_text(response) -> str:
    return " ".join(
        " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages).split()
    )


def test_a_spanish_speaking_debtor_gets_the_settlement_letter_and_plan_agreement_in_spanish(
    db_session, signed_in, make_client, make_case
):
    case = make_case(make_client(), status="active")
    case.debtor.language = "es"
    offer = propose_offer(
        db_session,
        case,
        amount_cents=85_000,
        expires_on=dt.date(2026, 12, 21),
        today=TODAY,
        role="collector",
        actor=STAFF,
        max_installments=3,
    )
    db_session.flush()
    client = signed_in(case)
    accept(client, case, offer)
    letter = db_session.scalars(
        sa.select(Document).where(Document.kind == "settlement_letter")
    ).one()

    text = pdf_text(client.get(f"/portal/cases/{case.reference}/settlement-letters/{letter.id}"))

    assert "Acuerdo de liquidación" in text
    assert "23 de noviembre de 2026" in text
    assert "Esta es una comunicación de un cobrador de deudas." in text
    assert "Monto de la liquidación $850.00" in text and "Usted ahorra $150.00" in text
    assert "Pagos permitidos hasta 3 pagos" in text
    assert "Lo que usted aceptó: “Acepto esta oferta: pagaré $850.00" in text
    assert "Página 1 de 1" in text
    assert "Settlement" not in text and "This is a communication" not in text

    url = f"/portal/cases/{case.reference}/plan"
    response = confirm_plan(
        client, url, {"frequency": "weekly", "count": "3", "first_on": "2026-11-30"}
    )
    assert response.status_code == 302
    agreement = db_session.scalars(
        sa.select(Document).where(Document.kind == "plan_agreement")
    ).one()

    text = pdf_text(client.get(f"/portal/cases/{case.reference}/plan-agreement/{agreement.id}"))

    assert "Acuerdo de plan de pagos" in text
    assert (
        "Maria Garcia se compromete a pagar $850.00 como liquidación de la cuenta con "
        "Acme Plumbing" in text
    )
    assert "de forma semanal, según este calendario" in text
    assert "Cuota Vence el" in text and "3 2026-12-14 $283.34" in text
    assert "Pague cada cuota a más tardar en su fecha de vencimiento" in text
    assert "Payment plan" not in text
