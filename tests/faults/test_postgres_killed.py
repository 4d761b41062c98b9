"""PostgreSQL backends killed mid-request (`pg_terminate_backend`) while the server posts
payments: from the API (an external id), a Stripe webhook and the debtor's portal. Each request
is held inside its transaction, waiting on a lock of the ledger, when its backend is killed; it
answers 503 "try again" (never a 500, never a trace); tried again, each payment is posted
exactly once. The webhook is kept in the inbox and answered 200 without touching the ledger;
the run that applies it (`flask stripe apply-events`) is the one that waits and is killed: it
notes the failure, and the next run posts the payment once."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import time
import uuid
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests
import sqlalchemy as sa
import stripe

from payments.gateway import sign_payload
from tests.faults.conftest import payments_on, portal_login, shown_internals, wait_for
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET
from tests.payments.test_gateway import VISA, card


@pytest.fixture
def postgres(world) -> str:
    if not world.postgres:
        pytest.skip("SQLite has no server backends to kill: this fault is PostgreSQL's")
    return sa.make_url(world.database_url).set(drivername="postgresql").render_as_string(False)


def waiting_on_the_ledger(conn: psycopg.Connection, database: str) -> list[int]:
    return [
        pid
        for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
            " AND pid <> pg_backend_pid()",
            (database,),
        )
    ]


def test_killed_backends_lose_and_double_no_payment(world, seed, postgres):
    database = sa.make_url(postgres).database
    code = seed.client(f"K{uuid.uuid4().hex[:6].upper()}")
    by_check = seed.case(code, principal=80_000)
    by_card = seed.case(code, principal=80_000, last_name="Okafor")
    api = seed.token(seed.user("supervisor"))
    debtor = portal_login(world, by_card)

    # A PaymentIntent of $120 that succeeded at Stripe, as the debtor's browser leaves it.
    http = stripe.RequestsClient()
    stripe_api = stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": world.stripe_url}, http_client=http
    )
    intent = stripe_api.v1.payment_intents.create(
        params={
            "amount": 12_000,
            "currency": "usd",
            "metadata": {"case_reference": by_card.case_reference, "source": "portal"},
        }
    )

    payment = {
        "amount_cents": 15_000,
        # The agency's today (the server runs on the real clock in the agency's time zone):
        # the machine's UTC date is tomorrow there every evening.
        "received_at": dt.datetime.now(ZoneInfo("America/New_York")).date().isoformat(),
        "method": "check",
        "external_id": "9001",
    }

    def post_check():
        return requests.post(
            f"{world.base}/api/v1/cases/{by_check.case_reference}/payments",
            json=payment,
            headers=api,
            timeout=30,
        )

    def deliver_event():
        found = stripe_api.v1.payment_intents.retrieve(intent.id)
        body = json.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex[:16]}",
                "type": "payment_intent.succeeded",
                "created": int(time.time()),
                "data": {"object": found.to_dict()},
            }
        ).encode()
        return requests.post(
            f"{world.base}/stripe/webhook",
            data=body,
            headers={
                "Stripe-Signature": sign_payload(body, WEBHOOK_SECRET, int(time.time())),
                "Content-Type": "application/json",
            },
            timeout=30,
        )

    def land():
        return debtor.get(f"{world.base}/portal/payments/{intent.id}", timeout=30)

    with (
        psycopg.connect(postgres, autocommit=False) as holder,
        psycopg.connect(postgres, autocommit=True) as killer,
    ):
        # The ledger is held: every request that posts waits inside its transaction.
        holder.execute("LOCK TABLE ledger_entries IN EXCLUSIVE MODE")
        stripe_api.v1.payment_intents.update(
            intent.id, params={"payment_method": card(stripe_api, VISA)}
        )
        stripe_api.v1.payment_intents.confirm(intent.id)  # Stripe's own webhook too
        # The webhook does not wait for the ledger: the event is kept, and answered at once.
        kept = deliver_event()
        assert kept.status_code == 200, kept.text
        assert kept.json()["duplicate"] is False

        def apply_events():
            return world.flask("stripe", "apply-events", "--json")

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = [pool.submit(post_check), pool.submit(land), pool.submit(apply_events)]

            def kill_the_waiting() -> bool:
                """Every backend waiting on the ledger is killed, until each request answered
                (Stripe's own delivery of the event waits, and is killed, too)."""
                for pid in waiting_on_the_ledger(killer, database):
                    killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
                return all(answer.done() for answer in answers)

            wait_for(kill_the_waiting, "each request to be killed while it waits", 60)
            killed = [a.result() for a in answers]
        holder.rollback()
    http.close()

    *requests_killed, applying = killed
    for answer in requests_killed:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        assert shown_internals(answer.text) == []
    assert "Please try again in a moment." in requests_killed[1].text  # the debtor's page
    # The run applying the kept events was killed as it waited: each noted, none applied.
    assert applying.returncode == 1, applying.stdout + applying.stderr
    run = json.loads(applying.stdout)
    assert run["applied"] == 0 and run["failed"] and run["left"] >= 1
    assert payments_on(world, by_check.case_reference) == []
    assert payments_on(world, by_card.case_reference) == []

    # Each tried again, twice: posted once.
    assert post_check().status_code == 201
    assert post_check().status_code == 409
    assert deliver_event().status_code == 200
    assert deliver_event().status_code == 200
    again = apply_events()
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["left"] == 0
    page = land()
    assert "Thank you. Your payment was received." in page.text or "Receipt" in page.text
    assert land().status_code == 200
    [(amount, external_id)] = payments_on(world, by_check.case_reference)
    assert amount == 15_000 and external_id.endswith(":9001")
    assert payments_on(world, by_card.case_reference) == [(12_000, intent.id)]
