"""POST /stripe/webhook: verified with STRIPE_WEBHOOK_SECRET, applied at most once."""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, current_app, jsonify, request

from api.json_errors import error_response
from payments.gateway import WebhookSignatureError
from payments.stripe_budget import Caller
from payments.webhooks import handle_event
from shell.extensions import csrf, db
from shell.timezone import agency_zone

bp = Blueprint("stripe", __name__, url_prefix="/stripe")
csrf.exempt(bp)
log = logging.getLogger(__name__)


@bp.post("/webhook")
def webhook():
    gateway = current_app.extensions.get("recourse.gateway")
    if gateway is None:
        return error_response(503, "not_configured", "Stripe is not configured")
    try:
        event = gateway.construct_event(request.get_data(), request.headers.get("Stripe-Signature"))
    except WebhookSignatureError as exc:
        return error_response(400, "bad_signature", str(exc))
    zone = agency_zone()

    def local_date(unix_time: int) -> dt.date:
        return dt.datetime.fromtimestamp(unix_time, dt.UTC).astimezone(zone).date()

    # The event's record and its effect commit together with this request's unit of work (and
    # roll back together if applying it raises, so that Stripe sends it again).
    # What it asks of Stripe spends the shared request budget after the portal's.
    outcome = handle_event(db.session, event, gateway.for_caller(Caller.WEBHOOK), local_date)
    log.info("stripe event %s %s: %s", event.get("id"), event.get("type"), outcome)
    return jsonify(received=True, outcome=outcome)
