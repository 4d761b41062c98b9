"""Benchmark: `plans charge-due` charging N due autopay installments against localstripe,
through the shared Stripe request budget and a fault proxy answering a share of requests 429.

Seeds a database with N active cases, each on a monthly autopay plan whose first installment
is due today, all charging one saved Visa at a local Stripe (localstripe, run as
bench/webhooks.py runs it). Stripe is reached as the app reaches it (the gateway create_app
makes, with its request budget: STRIPE_MAX_RPS from --max-rps, in Redis with --redis-url),
through bench/fault_proxy.py, which answers --share-429 of the requests with 429 and
`Stripe-Should-Retry: true` and forwards the rest. Then runs the charge-due service once, as the
command runs it with `--workers` (worker processes), and times it. Prints charges/s beside a
baseline measured in the same run (as many threads making bare off-session charges at
localstripe, no database, no budget, no proxy: what this machine and localstripe allow just
now), and the request rate the proxy forwarded to Stripe: over the run (at most the budget)
and in its busiest second (at most 1.25 times it, the bucket's burst: Stripe's own limit at the
default budgets). Then runs it a second time (which must charge nothing) and checks against
Stripe itself: one succeeded PaymentIntent per installment key, no key twice, every
installment paid (none lost, none left `processing`), one ledger payment per installment, and
with Redis one receipt job queued per payment to a debtor with an email address open to us. Exit 1 if any check fails.

    .venv/bin/python -m bench.autopay [--installments 5000] [--workers 4] [--max-rps 80]
        [--share-429 0.1] [--postgres | --database-url URL]
        [--redis-url redis://127.0.0.1:6379/N] [--chart docs/autopay.svg]
    .venv/bin/python -m bench.autopay --small [...]   # 200 installments: seconds (the tests)

The default database is a SQLite file in a temporary folder; --postgres makes a fresh
database `bench_autopay` on the local server. With --redis-url the receipt emails go to RQ's
`mail` queue there (emptied afterwards), as in production, and the request budget is kept
there; without, each worker runs them in-process after its commits, as the app does without
Redis (the seeded debtors have no email address, so nothing is sent), and each of the
--workers processes spends its part of the budget.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bench.chart import write_bars
from bench.common import machine_cpu_seconds, reset_database
from bench.fault_proxy import FaultProxy
from bench.webhooks import SECRET_KEY, seed, start_localstripe, stop

TODAY = dt.date(2026, 11, 23)


def bare_charges(gateway, customer: str, pm: str, n: int, threads: int) -> float:
    """Charges/s of `n` off-session charges at localstripe from `threads` threads, no database."""

    def one(i: int) -> None:
        gateway.charge_off_session(
            amount_cents=2_500,
            customer_id=customer,
            payment_method_id=pm,
            case_reference="RC-BASELINE",
            idempotency_key=f"baseline-{i}",
            metadata={"source": "baseline"},
        )

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return n / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--installments", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--baseline", type=int, default=500, help="bare charges to time first")
    parser.add_argument("--max-rps", type=int, default=80, help="STRIPE_MAX_RPS")
    parser.add_argument("--share-429", type=float, default=0.1, help="answered 429 by the proxy")
    parser.add_argument("--small", action="store_true", help="200 installments, 2 workers")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=None)
    where.add_argument("--postgres", action="store_true", help="a fresh bench_autopay database")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--chart", default=None, help="draw the run's figures to this SVG file")
    args = parser.parse_args(argv)
    if args.small:
        args.installments, args.workers, args.baseline = 200, 2, 0

    import stripe

    from agency import create_app
    from cases import audit
    from cases.case import Case, change_status
    from cases.debtors import takes_email
    from cases.ledger import LedgerEntry
    from cases.plans import Installment, create_plan, save_card
    from payments.autopay import charge_due
    from payments.gateway import StripeGateway
    from shell.autopay_cli import worker_sessions
    from shell.extensions import db

    work = Path(tempfile.mkdtemp(prefix="bench-autopay-"))
    if args.postgres:
        url = reset_database("bench_autopay")
    else:
        url = args.database_url or f"sqlite:///{work / 'bench.sqlite'}"
    localstripe, stripe_url = start_localstripe(work / "localstripe.log")
    proxy = FaultProxy(stripe_url, share_429=args.share_429).start()
    try:
        direct = StripeGateway(SECRET_KEY, "whsec_bench", api_base=stripe_url)
        api = stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_url})
        customer = direct.ensure_customer(debtor_id=1, name="Bench Payer", email=None)
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
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": args.redis_url,
                "SECRET_KEY": "bench",
                "STRIPE_SECRET_KEY": SECRET_KEY,
                "STRIPE_WEBHOOK_SECRET": "whsec_bench",
                "STRIPE_API_BASE": proxy.url,
                "STRIPE_MAX_RPS": args.max_rps,
            }
        )
        gateway = app.extensions["recourse.gateway"]  # with the app's request budget
        if args.redis_url:
            mail = app.extensions["recourse.jobs"].queue("mail")
            mail.empty()
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

            baseline = (
                bare_charges(direct, customer, pm, args.baseline, args.workers)
                if args.baseline
                else None
            )
            load = os.getloadavg()[0]
            zone = ZoneInfo(app.config["AGENCY_TIMEZONE"])
            sessions = worker_sessions(app)

            def charge_due_command():  # as `plans charge-due --workers N` runs it
                return charge_due(
                    session,
                    gateway,
                    today=TODAY,
                    zone=zone,
                    workers=args.workers,
                    worker_session=sessions,
                )

            proxy.reset()
            started, cpu = time.perf_counter(), machine_cpu_seconds()
            run = charge_due_command()
            seconds = time.perf_counter() - started
            requests_sent, turned_away = len(proxy.forwarded), proxy.rate_limited
            stripe_rate, peak = requests_sent / seconds, proxy.peak_rate(1.0)
            cpu_ms = (machine_cpu_seconds() - cpu) * 1000 / max(len(run.charged), 1)
            load = max(load, os.getloadavg()[0])
            again = charge_due_command()

            rate = len(run.charged) / seconds
            against = (
                f"baseline, bare charges at localstripe from {args.workers} threads: "
                f"{baseline:.0f}/s (ratio {rate / baseline:.2f}); "
                if baseline
                else ""
            )
            print(
                f"{db.engine.dialect.name}, {args.workers} workers, receipts "
                f"{'on RQ' if args.redis_url else 'run in-process'}, budget "
                f"{args.max_rps} requests/s {'in Redis' if args.redis_url else 'in memory'}: "
                f"charged {len(run.charged)} installments in {seconds:.1f} s: {rate:.0f} "
                f"charges/s; failed {len(run.failed)}, pending {len(run.pending)}\n"
                f"Stripe (the proxy): {requests_sent} requests forwarded, {turned_away} answered "
                f"429 ({args.share_429:.0%}); {stripe_rate:.1f} requests/s over the run (budget "
                f"{args.max_rps}), {peak:.0f} in the busiest second (at most "
                f"{args.max_rps * 1.25:.0f})\n"
                f"{against}1-min load average up to "
                f"{load:.1f} on {os.cpu_count()} cores; the machine's CPU (all processes: ours, "
                f"localstripe, the database) {cpu_ms:.1f} ms a charge"
            )
            within_budget = stripe_rate <= args.max_rps and peak <= args.max_rps * 1.25
            lost = session.scalar(
                sa.select(sa.func.count())
                .select_from(Installment)
                .where(Installment.seq == 1, Installment.status != "paid")
            )
            keys = collections.Counter()
            listing = api.v1.payment_intents.list(params={"limit": 100})
            for intent in listing.auto_paging_iter():
                meta = intent.metadata.to_dict()
                if intent.status == "succeeded" and meta.get("source") == "autopay":
                    keys[meta["idempotency_key"]] += 1
            duplicates = sum(n - 1 for n in keys.values() if n > 1)
            entries, distinct = session.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(LedgerEntry.external_id)))
                .select_from(LedgerEntry)
                .where(LedgerEntry.kind == "payment")
            ).one()
            receipts = mail.count if args.redis_url else None  # in-process: run, not counted
            # A receipt is asked for only where the debtor has an email address open to us.
            emailed = session.scalar(
                sa.select(sa.func.count())
                .select_from(LedgerEntry)
                .join(Case, Case.id == LedgerEntry.case_id)
                .where(LedgerEntry.kind == "payment", takes_email(Case.debtor_id))
            )
            print(
                f"second run charged {len(again.charged)}; Stripe has {sum(keys.values())} "
                f"succeeded PaymentIntents for {len(keys)} keys ({duplicates} duplicates); "
                f"ledger has {entries} payments ({distinct} distinct PaymentIntents); "
                f"{lost} installments not paid"
                + (
                    f"; {receipts} receipt jobs queued ({emailed} payers with an email address)"
                    if receipts is not None
                    else ""
                )
            )
            ok = (
                len(run.charged) == args.installments
                and not again.charged
                and duplicates == 0
                and len(keys) == args.installments
                and entries == distinct == args.installments
                and receipts in (None, emailed)
                and lost == 0
                and within_budget
            )
            if args.redis_url:
                mail.empty()
            if args.chart:
                write_bars(
                    args.chart,
                    f"plans charge-due, {args.installments:,} installments, "
                    f"{db.engine.dialect.name}",
                    "a second",
                    [
                        (f"charges, charge-due × {args.workers} workers", rate),
                        ("requests to Stripe", stripe_rate),
                        *(
                            [(f"bare charges × {args.workers} (baseline)", baseline)]
                            if baseline
                            else []
                        ),
                    ],
                    goal=args.max_rps,
                    goal_label="Stripe budget",
                )
            db.engine.dispose()
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        proxy.stop()
        stop(localstripe)


if __name__ == "__main__":
    sys.exit(main())
