"""Stripe's webhooks kept by gunicorn and applied by a real `flask worker payments` (which forks
a process for each job): payments made at the fake Stripe, whose own webhooks reach the server;
kept while no worker runs, then applied once a worker starts, batch after batch, each payment
once. A worker's jobs open their own database connections: with the parent's inherited, every
job after the first shared the first's PostgreSQL session, and the first statement it prepared
collided with the first job's (prepared statement "_pg3_0" already exists): the second batch
was never applied."""

from __future__ import annotations

import signal
import time
import uuid

import sqlalchemy as sa
import stripe

from payments.webhooks import InboxEvent
from tests.faults.conftest import payments_on, stop, wait_for
from tests.payments.conftest import SECRET_KEY
from tests.payments.test_gateway import VISA, card

BATCH = 12  # each job runs its statements often enough for psycopg to prepare them


def test_a_worker_applies_the_kept_events_batch_after_batch(world, seed):
    code = seed.client(f"W{uuid.uuid4().hex[:6].upper()}")
    case = seed.case(code, principal=500_000)
    http = stripe.RequestsClient()
    api = stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": world.stripe_url}, http_client=http
    )

    def pay(cents: int) -> str:
        intent = api.v1.payment_intents.create(
            params={
                "amount": cents,
                "currency": "usd",
                "metadata": {"case_reference": case.case_reference, "source": "portal"},
                "payment_method": card(api, VISA),
            }
        )
        api.v1.payment_intents.confirm(intent.id)  # the fake Stripe sends its webhook
        return intent.id

    def kept() -> int:
        return world.read(lambda s: s.scalar(sa.select(sa.func.count()).select_from(InboxEvent)))

    def waiting() -> int:
        return world.read(
            lambda s: s.scalar(
                sa.select(sa.func.count())
                .select_from(InboxEvent)
                .where(InboxEvent.applied_at.is_(None))
            )
        )

    before = kept()
    first = [pay(1_000 + n) for n in range(BATCH)]
    wait_for(lambda: kept() >= before + BATCH, "the first events to be kept")
    assert payments_on(world, case.case_reference) == []  # no worker yet: kept, not applied

    worker = world.spawn("worker", "payments", log="webhook-worker.log")
    try:
        wait_for(
            lambda: len(payments_on(world, case.case_reference)) == BATCH,
            "the worker to apply the first batch",
        )
        wait_for(lambda: waiting() == 0, "the first batch's job to end")
        time.sleep(1)  # its work horse gone: the worker waits on Redis for the next job
        # The worker held (SIGSTOP) while the second batch is kept, so that one job, in a new
        # work horse of the same worker, applies it all.
        worker.send_signal(signal.SIGSTOP)
        try:
            second = [pay(2_000 + n) for n in range(BATCH)]
            wait_for(lambda: waiting() >= BATCH, "the second events to be kept")
        finally:
            worker.send_signal(signal.SIGCONT)
        wait_for(
            lambda: len(payments_on(world, case.case_reference)) == 2 * BATCH,
            "the worker to apply the second batch",
        )
        wait_for(lambda: waiting() == 0, "the inbox to hold nothing left to apply")
    finally:
        stop(worker, signal.SIGTERM)
        http.close()

    posted = payments_on(world, case.case_reference)
    assert sorted(external_id for _, external_id in posted) == sorted(first + second)
    assert sum(cents for cents, _ in posted) == sum(1_000 + n + 2_000 + n for n in range(BATCH))
