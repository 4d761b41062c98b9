"""POST /stripe/webhook: verified with STRIPE_WEBHOOK_SECRET, kept once, answered at once.

The event is kept in the inbox (payments.webhooks.accept_event) and applied by the
`stripe.apply_events` job after this request commits: on a worker with REDIS_URL, in-process
(before the answer) without it. Stripe hears 200 as soon as the event is safely kept, however
long applying it takes, and never sends it again because applying it had to wait."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from api.json_errors import error_response
from payments.gateway import WebhookSignatureError
from payments.webhooks import BadEvent, accept_event
from shell.extensions import csrf, db

bp = Blueprint("stripe", __name__, url_prefix="/stripe")
csrf.exempt(bp)


@bp.post("/webhook")
def webhook():
    gateway = current_app.extensions.get("recourse.gateway")
    if gateway is None:
        return error_response(503, "not_configured", "Stripe is not configured")
    payload = request.get_data()
    try:
        event = gateway.construct_event(payload, request.headers.get("Stripe-Signature"))
        new = accept_event(db.session, event, payload.decode("utf-8"))
    except WebhookSignatureError as exc:
        return error_response(400, "bad_signature", str(exc))
    except (BadEvent, UnicodeDecodeError) as exc:
        return error_response(400, "bad_event", str(exc))
    return jsonify(received=True, event=event["id"], duplicate=not new)
