"""Benchmark: `plans charge-due` charging N due autopay installments against localstripe.

Seeds a database with N active cases, each on a monthly autopay plan whose first installment
is due today, all charging one saved Visa at a local Stripe (localstripe, run as
bench/webhooks.py runs it); then runs the charge-due service once, as the command does, and
times it. Prints charges/s (goal: at least 80/s, near Stripe's live limit of 100 requests/s),
then runs it a second time (which must charge nothing) and checks against Stripe itself: one
succeeded PaymentIntent per installment key, no key twice, one ledger entry per installment.
Exit 1 if any check fails.

    .venv/bin/python -m bench.autopay [--installments 5000] [--database-url URL]

The default database is a SQLite file in a temporary folder; pass a PostgreSQL URL to time it
there.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bench.webhooks import SECRET_KEY, seed, start_localstripe, stop

TODAY = dt.date(2026, 11, 23)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--installments", type=int, default=5000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    import stripe

    from agency import create_app
    from agency.extensions import db
    from cases import audit
    from cases.case import Case, change_status
    from cases.ledger import LedgerEntry
    from cases.plans import create_plan, save_card
    from payments.autopay import charge_due
    from payments.gateway import StripeGateway

    work = Path(tempfile.mkdtemp(prefix="bench-autopay-"))
    url = args.database_url or f"sqlite:///{work / 'bench.sqlite'}"
    localstripe, stripe_url = start_localstripe(work / "localstripe.log")
    try:
        gateway = StripeGateway(SECRET_KEY, "whsec_bench", api_base=stripe_url)
        api = stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_url})
        customer = gateway.ensure_customer(debtor_id=1, name="Bench Payer", email=None)
        pm = api.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "cvc": "123",
                },
            }
        ).id
        api.v1.payment_methods.attach(pm, params={"customer": customer})

        print(f"seeding {args.installments} cases on autopay plans ...", flush=True)
        seed(url, args.installments, random.Random(7))
        app = create_app({"DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": "bench"})
        actor = audit.Actor(None, "bench")
        with app.app_context():
            session = db.session
            for case in session.scalars(sa.select(Case)):
                change_status(session, case, "active", actor=actor, reason="bench")
                plan = create_plan(
                    session,
                    case,
                    frequency="monthly",
                    count=4,
                    first_on=TODAY,
                    today=TODAY,
                    actor=actor,
                    autopay=True,
                )
                save_card(session, plan, customer_id=customer, payment_method_id=pm, actor=actor)
            session.commit()

            zone = ZoneInfo(app.config["AGENCY_TIMEZONE"])
            started = time.perf_counter()
            run = charge_due(session, gateway, today=TODAY, zone=zone)
            seconds = time.perf_counter() - started
            again = charge_due(session, gateway, today=TODAY, zone=zone)

            rate = len(run.charged) / seconds
            print(
                f"charged {len(run.charged)} installments in {seconds:.1f} s: {rate:.0f} charges/s "
                f"(goal >= 80/s); failed {len(run.failed)}, pending {len(run.pending)}"
            )
            keys = collections.Counter()
            for intent in api.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
                if intent.status == "succeeded":
                    keys[intent.metadata["idempotency_key"]] += 1
            duplicates = sum(n - 1 for n in keys.values() if n > 1)
            entries = session.scalar(
                sa.select(sa.func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.kind == "payment")
            )
            print(
                f"second run charged {len(again.charged)}; Stripe has {sum(keys.values())} "
                f"succeeded PaymentIntents for {len(keys)} keys ({duplicates} duplicates); "
                f"ledger has {entries} payments"
            )
            ok = (
                len(run.charged) == args.installments
                and not again.charged
                and duplicates == 0
                and len(keys) == args.installments
                and entries == args.installments
            )
            db.engine.dispose()
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        stop(localstripe)


if __name__ == "__main__":
    sys.exit(main())
