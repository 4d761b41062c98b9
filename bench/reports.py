"""Benchmark: the reports pages over a national book (issue 21: under 2 s with 30 M entries).

Fills PostgreSQL by COPY with N ledger entries (default 3,000,000: one case for every three
entries, 20 clients, 36 months of referrals, payments, direct payments, reversals and
adjustments), builds the reports' running totals once (`flask reports rebuild`, the whole scan
the migration also does), then times through the real app, signed in: the agency's reports page
(/agency/reports), the client's (/client/reports) and, in the same run, the baseline /healthz.
Prints p50/p95, the ratio to the baseline, the SQL statements each page ran (and how many read
ledger_entries), the rows of the totals, and the price of keeping them: posting payments one
commit each with the totals kept and, in the same run, without (the flush hook removed).
Unless --no-live, it also times once the live SQL the page ran before the totals
(tests/payments/live_reports.py) on the same book.

    .venv/bin/python -m bench.reports [--ledger 3000000] [--requests 20] [--payments 200] [--small]

`--small` (3,000 entries, 2 clients; seconds) is the test suite's run (tests/bench/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time

import sqlalchemy as sa

from bench import book
from bench.common import (
    add_database_arguments,
    bench_app,
    bench_database,
    drop_database,
    p95,
    statements_of,
    timed,
)

DATABASE = "recourse_bench_reports"
CLIENTS = 20
COLLECTORS = 20
PASSWORD = "bench-password-1"
MONTHS = 36  # of referrals


def fill(app, n_entries: int, n_clients: int, n_collectors: int) -> dict:
    from cases import audit
    from cases.clients import create_client
    from cases.users import create_user
    from payments.fees import parse_tiers, set_schedule
    from shell.extensions import db

    rng = random.Random(21)
    actor = audit.Actor(None, "bench")
    with app.app_context():
        clients = []
        for c in range(n_clients):
            client = create_client(db.session, f"C{c:03d}", f"Client {c}", actor=actor)
            set_schedule(db.session, client, parse_tiers("90=2500,181=3300,366=4000"), actor=actor)
            clients.append(client)
        db.session.flush()
        collectors = [
            create_user(db.session, f"c{i}@bench.test", PASSWORD, "collector", actor=actor).id
            for i in range(n_collectors)
        ]
        create_user(db.session, "admin@bench.test", PASSWORD, "admin", actor=actor)
        create_user(
            db.session, "client@bench.test", PASSWORD, "client", actor=actor, client=clients[0]
        )
        client_ids = [c.id for c in clients]
        db.session.commit()
        db.session.close()
        with book.connection(db.engine) as conn:
            now = dt.datetime.now(dt.UTC)
            today = now.date()
            n_cases = max(n_entries // 3, 1)
            referred = [
                today - dt.timedelta(days=rng.randrange(0, MONTHS * 30)) for _ in range(n_cases)
            ]
            book.debtors(conn, map(book.numbered_debtor, range(1, n_cases + 1)), now=now)
            statuses = ("active",) * 6 + ("new", "plan", "paid", "closed")
            book.cases(
                conn,
                (
                    (
                        i,
                        f"RB-{i:012d}",
                        client_ids[i % n_clients],
                        i,
                        f"A{i}",
                        f"A{i}",
                        statuses[i % len(statuses)],
                        referred[i - 1],
                        referred[i - 1] - dt.timedelta(days=150 + i % 700),
                        referred[i - 1],
                        150 + i % 700,
                        collectors[i % n_collectors],
                        "recalled" if statuses[i % len(statuses)] == "closed" else None,
                    )
                    for i in range(1, n_cases + 1)
                ),
                now=now,
                extra=("assigned_to_id", "close_reason"),
            )

            def entries():
                entry_id = 0
                left = n_entries
                for i in range(1, n_cases + 1):
                    start = referred[i - 1]
                    span = (today - start).days
                    entry_id += 1
                    placed = rng.randint(5_000, 900_000)
                    yield (
                        entry_id,
                        i,
                        "placement",
                        "principal",
                        placed,
                        0,
                        0,
                        f"p:{i}",
                        start,
                        None,
                        None,
                    )
                    left -= 1
                    money = left if i == n_cases else min(left, 2)
                    last_payment = None
                    for _ in range(money):
                        entry_id += 1
                        day = start + dt.timedelta(days=rng.randint(0, span))
                        draw = rng.random()
                        if draw < 0.08 and last_payment is not None:
                            paid_id, paid_day, amount = last_payment
                            yield (
                                entry_id,
                                i,
                                "reversal",
                                None,
                                amount,
                                0,
                                -(amount // 4),
                                f"r:{entry_id}",
                                max(day, paid_day),
                                paid_id,
                                "check",
                            )
                            last_payment = None
                        elif draw < 0.18:
                            yield (
                                entry_id,
                                i,
                                "adjustment",
                                None,
                                -rng.randint(100, 5_000),
                                0,
                                0,
                                f"a:{entry_id}",
                                day,
                                None,
                                None,
                            )
                        else:
                            amount = rng.randint(1_000, max(placed // 4, 1_001))
                            kind = "direct_payment" if draw > 0.9 else "payment"
                            yield (
                                entry_id,
                                i,
                                kind,
                                None,
                                -amount,
                                2500,
                                amount // 4,
                                f"m:{entry_id}",
                                day,
                                None,
                                "check",
                            )
                            last_payment = (entry_id, day, amount)
                        left -= 1

            book.entries(conn, entries(), now=now, extra=("reverses_id", "method"))
            start_of_window = today.replace(day=1) - dt.timedelta(days=330)
            book.calls(
                conn,
                (
                    (
                        k,
                        1 + (k * 7) % n_cases,
                        now - dt.timedelta(days=rng.randint(0, 400)),
                        collectors[k % n_collectors],
                    )
                    for k in range(1, n_cases // 3 + 1)
                ),
                now=now,
                extra=("user_id",),
            )
            book.promises(
                conn,
                (
                    (
                        k,
                        k * 97 % n_cases + 1,
                        start_of_window + dt.timedelta(days=rng.randint(0, 360)),
                        dt.datetime.combine(start_of_window, dt.time(15), tzinfo=dt.UTC)
                        + dt.timedelta(days=rng.randint(0, 330)),
                        collectors[k % n_collectors],
                    )
                    for k in range(1, max(n_cases // 100, 1) + 1)
                ),
                extra=("created_at", "recorded_by_id"),
            )
            book.finish(conn, ("debtors", "cases", "ledger_entries", "contacts", "promises_to_pay"))
    return {"cases": n_cases, "client_id": client_ids[0]}


def post_payments(app, case_ids: list[int], n: int, tag: str) -> float:
    """Post n payments, one commit each, through payments.posting; ms per payment."""
    from cases import audit
    from cases.case import Case
    from payments.posting import post_payment
    from shell.extensions import db
    from shell.unit_of_work import step

    actor = audit.Actor(None, "bench")
    today = dt.date.today()
    started = time.perf_counter()
    with app.app_context():
        for k in range(n):
            with step():
                case = db.session.get(Case, case_ids[k % len(case_ids)])
                post_payment(
                    db.session,
                    case,
                    100,
                    external_id=f"bench:{tag}:{k}",
                    received_at=today,
                    method="check",
                    actor=actor,
                    allow_overpayment=True,
                )
    return (time.perf_counter() - started) * 1000 / n


def _an_admin(session) -> None:
    """admin@bench.test, made if the book has no such user."""
    from cases import audit
    from cases.users import User, create_user

    if session.scalar(sa.select(User.id).where(User.email == "admin@bench.test")) is None:
        create_user(
            session, "admin@bench.test", PASSWORD, "admin", actor=audit.Actor(None, "bench")
        )
        session.commit()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=int, help="ledger entries: 3,000,000 (--small: 3,000)")
    parser.add_argument("--requests", type=int, help="per page: 20 (--small: 3)")
    parser.add_argument("--payments", type=int, help="posted each way: 200 (--small: 5)")
    parser.add_argument("--no-live", action="store_true", help="skip timing the live SQL")
    parser.add_argument(
        "--reuse", action="store_true", help="time the book already in --database (no fill)"
    )
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    args.ledger = args.ledger or (3_000 if args.small else 3_000_000)
    args.requests = args.requests or (3 if args.small else 20)
    args.payments = args.payments or (5 if args.small else 200)

    from cases import report_totals
    from shell.extensions import db

    app = bench_app(bench_database(args))
    n_clients = 2 if args.small else CLIENTS
    n_collectors = 2 if args.small else COLLECTORS
    start = time.perf_counter()
    if args.reuse:
        with app.app_context():
            book = {
                "cases": db.session.scalar(sa.text("SELECT max(id) FROM cases")),
                "client_id": db.session.scalar(sa.text("SELECT min(id) FROM clients")),
            }
            args.ledger = db.session.scalar(sa.text("SELECT max(id) FROM ledger_entries"))
            _an_admin(db.session)  # a book another benchmark filled (bench.national) has none
            db.session.remove()
        print(f"reusing {args.ledger:,} ledger entries on {book['cases']:,} cases")
    else:
        book = fill(app, args.ledger, n_clients, n_collectors)
        print(
            f"filled {args.ledger:,} ledger entries on {book['cases']:,} cases, "
            f"{n_clients} clients, {n_collectors} collectors by COPY in "
            f"{time.perf_counter() - start:.1f} s"
        )
    start = time.perf_counter()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0, result.output
    rebuild_s = time.perf_counter() - start
    print(f"reports rebuild (the whole scan, once): {rebuild_s:.1f} s; {result.output.strip()}")
    with app.app_context():
        totals_rows = {
            m.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(m))
            for m in report_totals.TABLES
        }
        db.session.remove()

    staff, client_user = app.test_client(), app.test_client()
    for who, email in ((staff, "admin@bench.test"), (client_user, "client@bench.test")):
        response = who.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
    timed(staff, "/healthz", 5)
    timed(staff, "/agency/reports", 1)
    timed(client_user, "/client/reports", 1)
    baseline = timed(staff, "/healthz", args.requests)
    agency = timed(staff, "/agency/reports", args.requests)
    client_pages = timed(client_user, "/client/reports", args.requests)
    counted = {}
    for name, who, path in (
        ("agency", staff, "/agency/reports"),
        ("client", client_user, "/client/reports"),
    ):
        seen = statements_of(app, who, path)
        counted[name] = (len(seen), sum("ledger_entries" in s for s in seen))

    print(
        f"\n{'page':<18}{'p50 ms':>9}{'p95 ms':>9}{'p95 ÷ /healthz p95':>20}{'SQL':>6}{'ledger':>8}"
    )
    base95 = p95(baseline)
    for name, samples, count in (
        ("/healthz", baseline, ("", "")),
        ("/agency/reports", agency, counted["agency"]),
        ("/client/reports", client_pages, counted["client"]),
    ):
        print(
            f"{name:<18}{statistics.median(samples):>9.1f}{p95(samples):>9.1f}"
            f"{p95(samples) / base95:>20.0f}{count[0]:>6}{count[1]:>8}"
        )
    print("rows of the totals: " + ", ".join(f"{k} {v:,}" for k, v in totals_rows.items()))

    live_s = {}
    if not args.no_live:
        from payments.statements import Month
        from tests.payments import live_reports as live

        with app.app_context():
            last = Month.of(dt.date.today())
            for name, call in (
                ("collections", lambda: live.collections_by_month(db.session, last)),
                ("liquidation", lambda: live.liquidation_by_client(db.session)),
                ("aging", lambda: live.aging(db.session, dt.date.today())),
                ("vintages", lambda: live.vintages(db.session, last)),
                (
                    "client liquidation",
                    lambda: live.liquidation_by_placement_month(db.session, book["client_id"]),
                ),
            ):
                started = time.perf_counter()
                call()
                live_s[name] = time.perf_counter() - started
            db.session.remove()
        print(
            "the live SQL the page ran before (once each): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in live_s.items())
            + f"; sum {sum(live_s.values()):.1f} s"
        )

    # The price of keeping the totals: payments posted with the flush hook and without.
    case_ids = list(range(1, book["cases"] + 1, max(book["cases"] // 500, 1)))
    run = f"{time.time():.0f}"  # external ids of this run's payments (a reused book has others)
    # Alternating rounds, after a warm-up, so that the machine's load falls on both alike.
    post_payments(app, case_ids[-50:], 3, f"{run}:warm")
    rounds, times = 4, {"with": [], "without": []}
    for r in range(rounds):
        share = max(args.payments // rounds, 1)
        times["with"].append(post_payments(app, case_ids, share, f"{run}:with{r}"))
        sa.event.remove(sa.orm.Session, "after_flush", report_totals._after_flush)
        sa.event.remove(sa.orm.Session, "before_flush", report_totals._before_flush)
        try:
            times["without"].append(post_payments(app, case_ids[1:], share, f"{run}:without{r}"))
        finally:
            sa.event.listen(sa.orm.Session, "before_flush", report_totals._before_flush)
            sa.event.listen(sa.orm.Session, "after_flush", report_totals._after_flush)
    with_totals, without = statistics.median(times["with"]), statistics.median(times["without"])
    print(
        f"posting a payment (one commit each, {args.payments} each way): {with_totals:.1f} ms "
        f"with the totals kept, {without:.1f} ms without: ratio {with_totals / without:.2f}"
    )
    with app.app_context():
        db.engine.dispose()
    if args.small:
        drop_database(args.database, args.postgres_server)
    return {
        "healthz_p95_ms": base95,
        "agency_p50_ms": statistics.median(agency),
        "agency_p95_ms": p95(agency),
        "client_p50_ms": statistics.median(client_pages),
        "client_p95_ms": p95(client_pages),
        "statements": counted,
        "totals_rows": totals_rows,
        "rebuild_s": rebuild_s,
        "live_s": live_s,
        "posting_ms": (with_totals, without),
    }


if __name__ == "__main__":
    main()
