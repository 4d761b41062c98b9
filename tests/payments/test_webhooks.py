"""POST /stripe/webhook with real signatures against a real local Stripe: each event applied
once, duplicates and out-of-order deliveries change nothing, refunds and lost disputes reverse."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
import sqlalchemy as sa

from cases.audit import AuditEvent
from payments.gateway import StripeGateway, sign_payload
from payments.posting import LedgerEntry, balance_cents
from payments.unmatched import UnmatchedPayment
from payments.webhooks import StripeEvent
from tests.conftest import drain_jobs
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.payments.test_gateway import _dead_port, paid_intent


@pytest.fixture
def stripe_app(app, gateway):
    """The app with its gateway pointed at localstripe."""
    before = app.extensions.get("recourse.gateway")
    app.extensions["recourse.gateway"] = gateway
    yield app
    app.extensions["recourse.gateway"] = before


def deliver(client, event: dict, *, secret=WEBHOOK_SECRET, timestamp=None, tamper=False):
    """Stripe's delivery of `event`; then its application, by the job it asked for (already
    run in-process; on RQ, by a burst worker here)."""
    payload = json.dumps(event).encode()
    header = sign_payload(payload, secret, timestamp or int(time.time()))
    if tamper:
        payload = payload.replace(b'"amount"', b'"amount_x"', 1)
    answer = client.post(
        "/stripe/webhook",
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": header},
    )
    drain_jobs(client.application, ("payments",))
    return answer


def outcome(session, event: dict) -> str | None:
    """What applying the event did, as recorded with it (None: not applied)."""
    return session.scalar(sa.select(StripeEvent.outcome).where(StripeEvent.event_id == event["id"]))


def event(kind: str, obj: dict, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def payments(session, case_id):
    return session.scalars(
        sa.select(LedgerEntry)
        .where(LedgerEntry.case_id == case_id, LedgerEntry.kind != "placement")
        .order_by(LedgerEntry.id)
    ).all()


@pytest.fixture
def paid(stripe_app, gateway, stripe_api, make_client, make_case):
    """A case, and a PaymentIntent of $100 on it that succeeded at Stripe."""
    case = make_case(make_client(), principal=50_000, status="active", days_past_due=120)
    intent_id = paid_intent(gateway, stripe_api, case.reference, 10_000)
    return case, intent_id


def test_a_succeeded_payment_is_posted_once_whatever_the_deliveries(client, db_session, paid):
    case, intent_id = paid
    succeeded = event(
        "payment_intent.succeeded", {"id": intent_id, "object": "payment_intent", "amount": 10_000}
    )
    first = deliver(client, succeeded)
    assert first.status_code == 200
    assert first.json == {"received": True, "event": succeeded["id"], "duplicate": False}
    assert outcome(db_session, succeeded) == f"posted {intent_id}"
    assert deliver(client, succeeded).json["duplicate"] is True
    # The same PaymentIntent announced again under another event id.
    again = event("payment_intent.succeeded", {"id": intent_id, "amount": 10_000})
    assert deliver(client, again).status_code == 200
    entries = payments(db_session, case.id)
    assert [(e.kind, e.amount_cents, e.external_id, e.fee_cents) for e in entries] == [
        ("payment", -10_000, intent_id, 2_500)
    ]
    assert balance_cents(db_session, case.id) == 40_000
    assert db_session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 2


def test_partial_then_full_refund_and_refund_before_payment(client, db_session, paid, gateway):
    case, intent_id = paid
    charge_id = gateway.retrieve_payment_intent(intent_id).latest_charge_id
    # The refund arrives before the payment's success event: the payment is read from
    # Stripe and applied first, then the refund.
    partial = event(
        "charge.refunded",
        {
            "id": charge_id,
            "object": "charge",
            "payment_intent": intent_id,
            "amount_refunded": 4_000,
            "refunds": {"data": []},
        },
    )
    assert deliver(client, partial).status_code == 200
    assert balance_cents(db_session, case.id) == 44_000
    full = event(
        "charge.refunded",
        {
            "id": charge_id,
            "payment_intent": intent_id,
            "amount_refunded": 10_000,
            "refunds": {"data": []},
        },
    )
    assert deliver(client, full).status_code == 200
    late_success = event("payment_intent.succeeded", {"id": intent_id, "amount": 10_000})
    deliver(client, late_success)
    deliver(client, full)  # a duplicate event id changes nothing
    replay = event(
        "charge.refunded",
        {
            "id": charge_id,
            "payment_intent": intent_id,
            "amount_refunded": 10_000,
            "refunds": {"data": []},
        },
    )
    assert deliver(client, replay).status_code == 200
    assert outcome(db_session, replay) == "nothing new refunded"
    entries = payments(db_session, case.id)
    assert [(e.kind, e.amount_cents, e.fee_cents) for e in entries] == [
        ("payment", -10_000, 2_500),
        ("reversal", 4_000, -1_000),
        ("reversal", 6_000, -1_500),
    ]
    assert balance_cents(db_session, case.id) == 50_000
    # Charges that do not list their refunds (Stripe's default since 2022-11-15): the
    # reversal is dated by the event, not by Unix time 0.
    assert dt.date(1970, 1, 1) not in [e.received_at for e in entries]


def test_a_lost_dispute_reverses_the_payment_and_its_fee(client, db_session, paid):
    case, intent_id = paid
    deliver(client, event("payment_intent.succeeded", {"id": intent_id}))
    won = event(
        "charge.dispute.closed",
        {"id": "dp_1", "status": "won", "payment_intent": intent_id, "amount": 10_000},
    )
    deliver(client, won)
    assert "nothing to reverse" in outcome(db_session, won)
    lost = event(
        "charge.dispute.closed",
        {"id": "dp_2", "status": "lost", "payment_intent": intent_id, "amount": 10_000},
    )
    deliver(client, lost)
    deliver(
        client,
        event(
            "charge.dispute.closed",
            {"id": "dp_2", "status": "lost", "payment_intent": intent_id, "amount": 10_000},
        ),
    )
    entries = payments(db_session, case.id)
    assert [(e.kind, e.amount_cents, e.fee_cents) for e in entries] == [
        ("payment", -10_000, 2_500),
        ("reversal", 10_000, -2_500),
    ]


def test_a_failed_payment_is_recorded_on_the_case(
    client, db_session, stripe_app, make_client, make_case
):
    case = make_case(make_client(), principal=50_000, status="active")
    failed = event(
        "payment_intent.payment_failed",
        {
            "id": "pi_failed_1",
            "amount": 5_000,
            "metadata": {"case_reference": case.reference},
            "last_payment_error": {
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
        },
    )
    assert deliver(client, failed).status_code == 200
    audit_row = db_session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "payment.failed")
    )
    assert audit_row.case_id == case.id and audit_row.detail["code"] == "card_declined"
    assert balance_cents(db_session, case.id) == 50_000


def test_a_payment_without_a_known_case_is_kept_unmatched(
    client, db_session, stripe_app, gateway, stripe_api
):
    intent_id = paid_intent(gateway, stripe_api, "RC-NOPE-00000", 7_000)
    deliver(client, event("payment_intent.succeeded", {"id": intent_id}))
    item = db_session.scalar(sa.select(UnmatchedPayment))
    assert (item.external_id, item.amount_cents, item.method) == (intent_id, 7_000, "card")


@pytest.mark.parametrize("how", ["tampered", "wrong secret", "stale", "missing"])
def test_bad_signatures_are_refused_and_change_nothing(client, db_session, paid, how):
    case, intent_id = paid
    succeeded = event("payment_intent.succeeded", {"id": intent_id, "amount": 10_000})
    if how == "missing":
        response = client.post("/stripe/webhook", json=succeeded)
    else:
        response = deliver(
            client,
            succeeded,
            tamper=how == "tampered",
            secret="whsec_other" if how == "wrong secret" else WEBHOOK_SECRET,
            timestamp=int(time.time()) - 3_600 if how == "stale" else None,
        )
    assert response.status_code == 400
    assert response.json["error"] == "bad_signature"
    assert payments(db_session, case.id) == []
    assert db_session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0


def test_no_card_data_reaches_the_logs(client, paid, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    case, intent_id = paid
    deliver(client, event("payment_intent.succeeded", {"id": intent_id}))
    assert "4242424242424242" not in caplog.text and "4242 4242" not in caplog.text


def test_a_succeeded_event_from_stripe_is_applied_without_asking_stripe_again(
    app, client, db_session, make_case, make_client, gateway, stripe_api
):
    """Stripe's event carries the whole PaymentIntent: it is applied as it is (SPEC §8: the
    verified webhook is Stripe saying so), with Stripe out of reach."""
    case = make_case(make_client(), principal=50_000, status="active", days_past_due=120)
    intent_id = paid_intent(gateway, stripe_api, case.reference, 12_000)
    whole = stripe_api.v1.payment_intents.retrieve(intent_id).to_dict()
    before = app.extensions.get("recourse.gateway")
    away = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{_dead_port()}")
    app.extensions["recourse.gateway"] = away
    succeeded = event("payment_intent.succeeded", whole)
    try:
        deliver(client, succeeded)  # and applied, with Stripe away
    finally:
        app.extensions["recourse.gateway"] = before
        away.close()
    assert outcome(db_session, succeeded) == f"posted {intent_id}"
    assert [(e.amount_cents, e.external_id) for e in payments(db_session, case.id)] == [
        (-12_000, intent_id)
    ]
