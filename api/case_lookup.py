"""API: cases, as their client and the agency see them."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g, jsonify

from api.base import bp
from api.json_errors import ApiError
from cases import limitations
from cases.case import Case
from cases.ledger import itemization
from shell.extensions import db
from shell.timezone import agency_today


def visible_case(reference: str) -> Case:
    """The case if this token may see it; a client token sees only its client's cases."""
    query = sa.select(Case).where(Case.reference == reference.strip().upper())
    if g.api_user.role == "client":
        query = query.where(Case.client_id == g.api_user.client_id)
    case = db.session.scalar(query)
    if case is None:
        raise ApiError(404, "not_found", f"no case {reference}")
    return case


@bp.get("/cases/<reference>")
def get_case(reference: str):
    case = visible_case(reference)
    items = itemization(db.session, case)
    limitation = limitations.of_case(db.session, case)
    return jsonify(
        reference=case.reference,
        client=case.client.code,
        account_number=case.account_number,
        status=case.status,
        program=case.program,
        close_reason=case.close_reason,
        debtor={"type": case.debtor.kind, "name": case.debtor.display_name},
        balance_cents=items["current_amount_cents"],
        itemization=items,
        referred_on=case.referred_on.isoformat(),
        debt_kind=case.debt_kind,
        limitation=limitation
        and {
            "state": limitation.law.state,
            "kind": limitation.applied_kind,
            "years": limitation.years,
            "runs_from": limitation.runs_from.isoformat(),
            "expires_on": limitation.expires_on.isoformat(),
            "time_barred": limitation.time_barred(agency_today()),
            "source": limitation.law.source,
        },
    )
