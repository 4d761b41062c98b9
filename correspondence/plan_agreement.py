"""The plan agreement (PDF): the schedule and, with autopay, the authorisation agreed to."""

from __future__ import annotations

from cases import limitations
from cases.case import Case
from cases.documents import Document
from cases.plans import PaymentPlan
from correspondence.pdf import agency_letterhead, render_letter
from shell.document_store import store
from shell.extensions import db
from shell.timezone import agency_today, agency_zone


def agreement_data(case: Case, plan: PaymentPlan) -> dict:
    debtor = case.debtor
    today = agency_today()
    return {
        "agency": agency_letterhead(),
        "date": today,
        "time_barred_disclosure": limitations.disclosure(db.session, case, today),
        "reference": case.reference,
        "debtor_name": debtor.display_name,
        "creditor": case.client.name,
        "account_number": case.account_number,
        "total_cents": plan.total_cents,
        "down_payment_cents": plan.down_payment_cents,
        "frequency": plan.frequency,
        "settlement": plan.offer_id is not None,
        "autopay": plan.autopay,
        "card_saved": plan.stripe_payment_method_id is not None,
        "consent_text": plan.consent_text,
        "consented_at": (
            plan.consented_at.astimezone(agency_zone()).strftime("%Y-%m-%d %H:%M %Z")
            if plan.consented_at
            else None
        ),
        "installments": [
            {"seq": i.seq, "due_on": i.due_on, "amount_cents": i.amount_cents}
            for i in plan.installments
        ],
    }


def store_agreement(case: Case, plan: PaymentPlan, *, uploaded_by_id: int | None) -> Document:
    """Render the agreement as it stands and keep it with the case (kind `plan_agreement`)."""
    pdf = render_letter(
        "pdf/plan_agreement.html", case.debtor.language, a=agreement_data(case, plan)
    )
    return store(
        pdf,
        filename=f"plan-agreement-{case.reference}-{plan.id}.pdf",
        content_type="application/pdf",
        kind="plan_agreement",
        case_id=case.id,
        debtor_id=case.debtor_id,
        uploaded_by_id=uploaded_by_id,
    )
