"""API: cases, as their client and the agency see them."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g, jsonify

from agency.api.base import bp
from agency.api.errors import ApiError
from agency.extensions import db
from cases.case import Case
from payments.ledger import LedgerEntry


def visible_case(reference: str) -> Case:
    """The case if this token may see it; a client token sees only its client's cases."""
    query = sa.select(Case).where(Case.reference == reference.strip().upper())
    if g.api_user.role == "client":
        query = query.where(Case.client_id == g.api_user.client_id)
    case = db.session.scalar(query)
    if case is None:
        raise ApiError(404, "not_found", f"no case {reference}")
    return case


def itemization(case: Case) -> dict:
    """Reg F itemisation: amount on the itemisation date, then what changed it since."""
    totals = dict.fromkeys(
        ("principal", "interest", "fees", "payments", "credits", "adjustments"), 0
    )
    for entry in db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.case_id == case.id)):
        if entry.kind == "placement":
            totals[entry.component] += entry.amount_cents
        elif entry.kind in ("payment", "direct_payment", "reversal"):
            totals["payments"] += -entry.amount_cents
        elif entry.kind == "settlement_writeoff":
            totals["credits"] += -entry.amount_cents
        else:
            totals["adjustments"] += entry.amount_cents
    at_itemization = totals["principal"]
    current = (
        at_itemization
        + totals["interest"]
        + totals["fees"]
        + totals["adjustments"]
        - totals["payments"]
        - totals["credits"]
    )
    return {
        "itemization_date": case.itemization_date.isoformat(),
        "amount_on_itemization_date_cents": at_itemization,
        "interest_cents": totals["interest"],
        "fees_cents": totals["fees"],
        "adjustments_cents": totals["adjustments"],
        "payments_cents": totals["payments"],
        "credits_cents": totals["credits"],
        "current_amount_cents": current,
    }


@bp.get("/cases/<reference>")
def get_case(reference: str):
    case = visible_case(reference)
    items = itemization(case)
    return jsonify(
        reference=case.reference,
        client=case.client.code,
        account_number=case.account_number,
        status=case.status,
        close_reason=case.close_reason,
        debtor={"type": case.debtor.kind, "name": case.debtor.display_name},
        balance_cents=items["current_amount_cents"],
        itemization=items,
        referred_on=case.referred_on.isoformat(),
    )
