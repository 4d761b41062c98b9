"""Benchmark: `plans charge-due` charging N due autopay installments against localstripe.

Seeds a database with N active cases, each on a monthly autopay plan whose first installment
is due today, all charging one saved Visa at a local Stripe (localstripe, run as
bench/webhooks.py runs it); then runs the charge-due service once, as the command runs it
with `--workers` (worker processes), and times it. Prints charges/s (goal: at least 80/s,
near Stripe's live limit of 100 requests/s) beside a baseline measured in the same run: as
many threads making bare off-session charges at localstripe, with no database (what this
machine and localstripe allow just now). Then runs it a second time (which must charge
nothing) and checks against Stripe itself: one succeeded PaymentIntent per installment key,
no key twice, one ledger payment per installment, and with Redis one receipt job queued per
payment. Exit 1 if any check fails.

    .venv/bin/python -m bench.autopay [--installments 5000] [--workers 4]
        [--postgres | --database-url URL] [--redis-url redis://127.0.0.1:6379/N]
        [--chart docs/autopay.svg]

The default database is a SQLite file in a temporary folder; --postgres makes a fresh
database `bench_autopay` on the local server. With --redis-url the receipt emails go to RQ's
`mail` queue there (emptied afterwards), as in production; without, each worker runs them
in-process after its commits, as the app does without Redis (the seeded debtors have no email
address, so nothing is sent).
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--installments", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--baseline", type=int, default=500, help="bare charges to time first")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=None)
    where.add_argument("--postgres", action="store_true", help="a fresh bench_autopay database")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--chart", default=None, help="draw the run's figures to this SVG file")
    args = parser.parse_args()

    import stripe

    from agency import create_app
    from cases import audit
    from cases.case import Case, change_status
    from cases.ledger import LedgerEntry
    from cases.plans import create_plan, save_card
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
        app = create_app({"DATABASE_URL": url, "REDIS_URL": args.redis_url, "SECRET_KEY": "bench"})
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

            baseline = bare_charges(gateway, customer, pm, args.baseline, args.workers)
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

            started, cpu = time.perf_counter(), machine_cpu_seconds()
            run = charge_due_command()
            seconds = time.perf_counter() - started
            cpu_ms = (machine_cpu_seconds() - cpu) * 1000 / max(len(run.charged), 1)
            load = max(load, os.getloadavg()[0])
            again = charge_due_command()

            rate = len(run.charged) / seconds
            print(
                f"{db.engine.dialect.name}, {args.workers} workers, receipts "
                f"{'on RQ' if args.redis_url else 'run in-process'}: charged "
                f"{len(run.charged)} installments in {seconds:.1f} s: {rate:.0f} charges/s "
                f"(goal >= 80/s); failed {len(run.failed)}, pending {len(run.pending)}\n"
                f"baseline, bare charges at localstripe from {args.workers} threads: "
                f"{baseline:.0f}/s (ratio {rate / baseline:.2f}); 1-min load average up to "
                f"{load:.1f} on {os.cpu_count()} cores; the machine's CPU (all processes: ours, "
                f"localstripe, the database) {cpu_ms:.1f} ms a charge"
            )
            keys = collections.Counter()
            for intent in api.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
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
            print(
                f"second run charged {len(again.charged)}; Stripe has {sum(keys.values())} "
                f"succeeded PaymentIntents for {len(keys)} keys ({duplicates} duplicates); "
                f"ledger has {entries} payments ({distinct} distinct PaymentIntents)"
                + (f"; {receipts} receipt jobs queued" if receipts is not None else "")
            )
            ok = (
                len(run.charged) == args.installments
                and not again.charged
                and duplicates == 0
                and len(keys) == args.installments
                and entries == distinct == args.installments
                and receipts in (None, args.installments)
            )
            if args.redis_url:
                mail.empty()
            if args.chart:
                write_bars(
                    args.chart,
                    f"plans charge-due, {args.installments:,} installments, "
                    f"{db.engine.dialect.name}",
                    "charges/s",
                    [
                        (f"charge-due, {args.workers} worker processes", rate),
                        (f"bare charges, {args.workers} threads (baseline)", baseline),
                    ],
                    goal=80,
                )
            db.engine.dispose()
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        stop(localstripe)


if __name__ == "__main__":
    sys.exit(main())
