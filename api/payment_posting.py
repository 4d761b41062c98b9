"""API: payments posted from outside (lockbox files, accounting systems, the client's books)."""

from __future__ import annotations

import datetime as dt

from flask import g, jsonify

from api.base import bp, json_object
from api.case_lookup import visible_case
from api.json_errors import ApiError
from cases import audit
from payments.posting import (
    METHODS,
    DuplicatePosting,
    LedgerError,
    ReceivedDateError,
    balance_cents,
    client_external_id,
    post_instrument,
    post_payment,
)
from shell.extensions import db
from shell.money import MAX_CENTS
from shell.timezone import agency_today


@bp.post("/cases/<reference>/payments")
def post_case_payment(reference: str):
    case = visible_case(reference)  # a client token reaches only its own cases
    body = json_object()
    amount = body.get("amount_cents")
    # Bounded like any amount typed in Recourse: a larger one is a typo or a pasted id.
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_CENTS:
        raise ApiError(
            422, "invalid_amount", f"amount_cents must be a positive integer up to {MAX_CENTS}"
        )
    try:
        received_at = dt.date.fromisoformat(str(body.get("received_at", "")))
    except ValueError:
        raise ApiError(
            422, "invalid_received_at", "received_at must be a date like 2026-11-23"
        ) from None
    method = body.get("method")
    if method not in METHODS:
        raise ApiError(422, "invalid_method", f"method must be one of: {', '.join(METHODS)}")
    external_id = body.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 80:
        raise ApiError(
            422,
            "invalid_external_id",
            "external_id is required: your unique reference for this payment",
        )
    user = g.api_user
    direct = user.role == "client"
    try:
        if direct:  # the client's own reference, in its own namespace
            entry = post_payment(
                db.session,
                case,
                amount,
                external_id=client_external_id(case.client.code, external_id),
                received_at=received_at,
                method=method,
                actor=audit.Actor.user(user),
                direct=True,
                memo="via the API",
                today=agency_today(),
            )
        else:  # an instrument: the same number from the same debtor is one payment
            [entry] = post_instrument(
                db.session,
                [(case, amount)],
                method=method,
                number=external_id,
                received_at=received_at,
                actor=audit.Actor.user(user),
                memo="via the API",
                today=agency_today(),
            )
    except DuplicatePosting:
        raise ApiError(
            409,
            "duplicate",
            f"external_id {body['external_id']} was already posted",
            {"external_id": body["external_id"]},
        ) from None
    except ReceivedDateError as exc:
        raise ApiError(422, "invalid_received_at", f"received_at: {exc}") from None
    except LedgerError as exc:
        raise ApiError(422, "invalid_payment", str(exc)) from None
    return jsonify(
        id=entry.id,
        case=case.reference,
        kind=entry.kind,
        amount_cents=amount,
        fee_cents=entry.fee_cents,
        received_at=received_at.isoformat(),
        balance_cents=balance_cents(db.session, case.id),
        status=case.status,
    ), 201
