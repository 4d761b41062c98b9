"""Benchmark: what one webhook delivery costs, counted rather than timed (so a busy machine
does not move it): SQL statements, commits and this process's CPU a delivery (the request,
which keeps the event), and then the same and the requests to Stripe an event for applying them
all (`stripe.apply_events`, as a worker does), with /healthz beside them; `--profile` prints
cProfile's top functions.

Seeds a fresh PostgreSQL database (or --database-url, emptied) as bench/webhooks.py does, pays
and refunds PaymentIntents at localstripe, and sends the schedule of deliveries bench/webhooks.py
makes (re-sends, out of order) one at a time through the Flask test client, in this process,
with Stripe reached through bench/fault_proxy.py (counting, never refusing).

    .venv/bin/python -m bench.webhook_path [--events 500] [--cases 60] [--database-url URL]
        [--profile [--profile-file PATH]] [--trace] [--chart docs/webhook-path.svg] [--small]

`--trace` prints the statements of the first delivery of each outcome (posted, reversed,
duplicate event...); `--small` (120 deliveries, 20 cases) is the test suite's run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event as sa_event

from bench import webhooks as w
from bench.chart import write_bars
from bench.common import reset_database
from bench.fault_proxy import FaultProxy


class Held:
    """The job runner while deliveries are counted: what they ask for waits."""

    def dispatch_all(self, requests) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database to empty")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--profile-file", default=None, help="with --profile: write the stats here")
    parser.add_argument("--chart", default=None)
    parser.add_argument("--small", action="store_true", help="120 deliveries, 20 cases (tests)")
    parser.add_argument(
        "--trace", action="store_true", help="print the statements of one delivery of each outcome"
    )
    args = parser.parse_args(argv)
    if args.small:
        args.events, args.cases = 120, 20

    from agency import create_app
    from payments.gateway import sign_payload
    from shell.extensions import db
    from shell.stripe_cli import apply_events

    rng = random.Random(args.seed)
    unique = args.events - round(args.events * w.DUPLICATE_SHARE)
    n_refund_events = round(unique * w.REFUND_EVENT_SHARE)
    n_double = n_refund_events // 7
    url = (
        w.empty_database(args.database_url)
        if args.database_url
        else reset_database("recourse_bench_webhook_path")
    )
    balances = w.seed(url, args.cases, rng)
    localstripe, stripe_url = w.start_localstripe(Path(tempfile.mkdtemp()) / "localstripe.log")
    proxy = FaultProxy(stripe_url).start()
    try:
        side = w.StripeSide(stripe_url)
        payments = w.plan_payments(
            balances, unique - n_refund_events, n_refund_events - 2 * n_double, n_double, rng
        )
        w.in_threads(side.pay, payments, 4)
        w.in_threads(side.refund, [p for p in payments if p.refunds], 4)
        plan = w.schedule(payments, args.events, rng)
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": "",
                "SECRET_KEY": "bench",
                "STRIPE_SECRET_KEY": w.SECRET_KEY,
                "STRIPE_WEBHOOK_SECRET": w.WEBHOOK_SECRET,
                "STRIPE_API_BASE": proxy.url,
                "STRIPE_MAX_RPS": 1000,
            }
        )
        client = app.test_client()
        client.get("/healthz")
        counts = {"sql": 0, "commit": 0}
        with app.app_context():
            engine = db.engine

        statements: list[str] = []

        def statement(_conn, _cursor, sql, *_args) -> None:
            counts["sql"] += 1
            sql = " ".join(sql.split())
            statements.append(sql if len(sql) < 160 else f"{sql[:90]} … {sql[-60:]}")

        def commit(*_args) -> None:
            counts["commit"] += 1
            statements.append("COMMIT")

        sa_event.listen(engine, "before_cursor_execute", statement)
        sa_event.listen(engine, "commit", commit)

        def deliver(ev: dict) -> None:
            body = json.dumps(ev).encode()
            answer = client.post(
                "/stripe/webhook",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign_payload(body, w.WEBHOOK_SECRET),
                },
            )
            if answer.status_code != 200:
                raise RuntimeError(f"{ev['id']}: {answer.status_code} {answer.data[:200]!r}")
            return "sent again" if answer.get_json()["duplicate"] else "kept"

        # The jobs wait while the deliveries are counted (as on RQ, where a worker applies the
        # kept events): the request alone, then the application of every kept event.
        app.extensions["recourse.jobs"] = Held()
        profile = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall
        proxy.reset()
        cpu = time.process_time()
        if profile:
            profile.enable()
        traced: dict[str, list[str]] = {}
        for ev in plan.deliveries:
            statements.clear()
            outcome = deliver(ev)
            traced.setdefault(outcome, list(statements))
        n = len(plan.deliveries)
        event_cpu = (time.process_time() - cpu) * 1000 / n
        sql, commits = counts["sql"] / n, counts["commit"] / n
        counts.update(sql=0, commit=0)
        statements.clear()
        cpu = time.process_time()
        with app.app_context():
            run = apply_events()
        if profile:
            profile.disable()
        if run.applied != plan.unique or run.failed or run.left:
            raise RuntimeError(f"{plan.unique} events kept, applied: {run.as_json()}")
        traced["applied, the first events"] = statements[:40]
        u = plan.unique
        apply_cpu = (time.process_time() - cpu) * 1000 / u
        a_sql, a_commits, stripe = counts["sql"] / u, counts["commit"] / u, len(proxy.forwarded) / u
        counts.update(sql=0, commit=0)
        cpu = time.process_time()
        for _ in range(n):
            client.get("/healthz")
        health_cpu = (time.process_time() - cpu) * 1000 / n
        print(
            f"{n} deliveries ({plan.unique} unique events), one at a time:\n"
            f"  POST /stripe/webhook: {sql:.1f} SQL statements, {commits:.2f} commits, "
            f"{event_cpu:.1f} ms of our CPU a delivery\n"
            f"  applying an event:    {a_sql:.1f} SQL statements, {a_commits:.2f} commits, "
            f"{stripe:.2f} requests to Stripe, {apply_cpu:.1f} ms of our CPU an event "
            f"(stripe.apply_events, {u} events)\n"
            f"  GET /healthz:         {counts['sql'] / n:.1f} SQL statements, "
            f"{health_cpu:.1f} ms of our CPU a request"
        )
        if args.trace:
            for outcome, sqls in traced.items():
                print(f"\n{outcome}: {len(sqls)} statements")
                print("".join(f"    {sql}\n" for sql in sqls), end="")
        if profile:
            profile.dump_stats(args.profile_file) if args.profile_file else None
            pstats.Stats(profile).sort_stats("cumulative").print_stats(
                r"/(payments|shell|api)/", 25
            )
        if args.chart:
            write_bars(
                args.chart,
                f"our CPU per request ({n} deliveries, PostgreSQL)",
                "ms",
                [
                    ("POST /stripe/webhook", event_cpu),
                    ("applying an event", apply_cpu),
                    ("GET /healthz", health_cpu),
                ],
            )
        with app.app_context():
            db.engine.dispose()
        return 0
    finally:
        proxy.stop()
        w.stop(localstripe)


if __name__ == "__main__":
    sys.exit(main())
