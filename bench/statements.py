"""Benchmark: monthly statements for 50 clients × 2,000 payments in a month on PostgreSQL.

Fills PostgreSQL (by COPY) with N clients, each with 500 cases and M payments received in the
last month that has ended, then issues every client's statement through the app's own path
(`correspondence.statement_mail`: lines, totals, PDF by WeasyPrint, CSV, stored) and, in the same run, a
baseline: WeasyPrint rendering a bare one-page document. Prints the total, the time per
statement and its ratio to the baseline, and where it goes (database vs PDF).

    .venv/bin/python -m bench.statements [--clients 50] [--payments 2000] [--small]

`--small` (2 clients × 20 payments; seconds) is the test suite's run (tests/bench/): it fails
as the full run would if a schema change broke the fill or the statements.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import statistics
import time

import sqlalchemy as sa
from pypdf import PdfReader

from bench import book
from bench.common import add_database_arguments, drop_database, reset_database

DATABASE = "recourse_bench_stmt"
CASES_PER_CLIENT = 500


def fill(app, n_clients: int, n_payments: int, month) -> None:
    from cases import audit, report_totals
    from cases.clients import create_client
    from payments.fees import fee_cents, parse_tiers, set_schedule
    from shell.extensions import db

    rng = random.Random(8)
    actor = audit.Actor(None, "bench")
    with app.app_context():
        created = dt.datetime.combine(month.start, dt.time(12), tzinfo=dt.UTC) - dt.timedelta(
            days=60
        )
        client_ids = []
        for c in range(n_clients):
            client = create_client(db.session, f"C{c:03d}", f"Client {c}", actor=actor)
            client.created_at = created
            set_schedule(db.session, client, parse_tiers("90=2500,181=3300,366=4000"), actor=actor)
            client_ids.append(client.id)
        db.session.commit()
        with book.connection(db.engine) as conn:
            now = dt.datetime.now(dt.UTC)
            n_cases = n_clients * CASES_PER_CLIENT
            referred = month.start - dt.timedelta(days=45)
            ages = [rng.choice((120, 200, 400)) for _ in range(n_cases)]
            book.debtors(conn, map(book.numbered_debtor, range(1, n_cases + 1)), now=now)
            book.cases(
                conn,
                (
                    (
                        i,
                        f"RC-B-{i:07d}",
                        client_ids[(i - 1) // CASES_PER_CLIENT],
                        i,
                        f"A{i}",
                        f"A{i}",
                        "active",
                        referred,
                        referred - dt.timedelta(days=ages[i - 1]),
                        referred - dt.timedelta(days=ages[i - 1]),
                        ages[i - 1],
                    )
                    for i in range(1, n_cases + 1)
                ),
                now=now,
            )
            rates = {120: 2500, 200: 3300, 400: 4000}

            def entries():
                yield from (
                    (
                        i,
                        i,
                        "placement",
                        "principal",
                        5_000_000,
                        0,
                        0,
                        f"b:p:{i}",
                        referred,
                        None,
                    )
                    for i in range(1, n_cases + 1)
                )
                entry_id = n_cases
                for c in range(n_clients):
                    for k in range(n_payments):
                        case_id = c * CASES_PER_CLIENT + k % CASES_PER_CLIENT + 1
                        amount = rng.randint(1_000, 90_000)
                        bps = rates[ages[case_id - 1]]
                        entry_id += 1
                        day = month.start + dt.timedelta(days=rng.randint(0, month.end.day - 1))
                        yield (
                            entry_id,
                            case_id,
                            "payment" if k % 10 else "direct_payment",
                            None,
                            -amount,
                            bps,
                            fee_cents(amount, bps),
                            f"b:{entry_id}",
                            day,
                            "check",
                        )

            book.entries(conn, entries(), now=now, extra=("method",))
            book.finish(conn, ("debtors", "cases", "ledger_entries"), vacuum=False)
        # COPY bypassed the app: the reports' totals (the statement's 12-month chart reads them).
        report_totals.rebuild(db.session)
        db.session.commit()


BARE = "<!doctype html><html><body><h1>Statement</h1><p>One page.</p></body></html>"


def baseline_ms(app, runs: int = 15) -> float:
    """WeasyPrint rendering a bare one-page document, with the app's own URL fetcher."""
    from weasyprint import HTML

    from correspondence.pdf import STATIC, OwnAssetsOnly

    samples = []
    with app.app_context():
        for _ in range(runs + 2):
            start = time.perf_counter()
            HTML(
                string=BARE, base_url=STATIC.resolve().as_uri() + "/", url_fetcher=OwnAssetsOnly()
            ).write_pdf()
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples[2:])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, help="50 (--small: 2)")
    parser.add_argument("--payments", type=int, help="per client: 2,000 (--small: 20)")
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    if args.clients is None:
        args.clients = 2 if args.small else 50
    if args.payments is None:
        args.payments = 20 if args.small else 2000

    from flask_migrate import upgrade

    from agency import create_app
    from cases import audit
    from cases.clients import Client
    from cases.model import utcnow
    from correspondence import statement_mail as statement_run
    from payments.statements import issue, last_ended_month
    from shell.extensions import db
    from shell.timezone import agency_zone

    url = reset_database(args.database, args.postgres_server)
    app = create_app({"DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        month = last_ended_month(agency_zone(), utcnow())
    start = time.perf_counter()
    fill(app, args.clients, args.payments, month)
    print(
        f"filled {args.clients} clients × {args.payments:,} payments in {month} "
        f"in {time.perf_counter() - start:.1f} s"
    )

    base = baseline_ms(app, runs=3 if args.small else 15)
    pdf_ms: list[float] = []

    def timed_render(doc):
        begin = time.perf_counter()
        try:
            return statement_run.render_statement(doc)
        finally:
            pdf_ms.append((time.perf_counter() - begin) * 1000)

    per_statement, lines, pdfs, pages = [], [], [], []
    actor = audit.Actor(None, "bench")
    with app.app_context():
        clients = db.session.scalars(sa.select(Client).order_by(Client.code)).all()
        total_start = time.perf_counter()
        for client in clients:
            begin = time.perf_counter()
            result = issue(
                db.session,
                client,
                month,
                zone=agency_zone(),
                now=utcnow(),
                actor=actor,
                render_pdf=timed_render,
            )
            db.session.commit()
            per_statement.append((time.perf_counter() - begin) * 1000)
            lines.append(len(result.statement.lines))
            pdfs.append(result.statement.pdf[:5])
            pages.append(len(PdfReader(io.BytesIO(result.statement.pdf)).pages))
        total = time.perf_counter() - total_start
        # A second baseline: a bare SQL sum of each client's month of payments (the least any
        # statement must read).
        begin = time.perf_counter()
        for client in clients:
            db.session.execute(
                sa.text(
                    "SELECT sum(amount_cents), sum(fee_cents), count(*) FROM ledger_entries e "
                    "JOIN cases c ON c.id = e.case_id WHERE c.client_id = :c "
                    "AND e.received_at BETWEEN :a AND :b"
                ),
                {"c": client.id, "a": month.start, "b": month.end},
            ).one()
        sql_sum_ms = (time.perf_counter() - begin) * 1000 / len(clients)
        again = time.perf_counter()
        issue(
            db.session,
            clients[0],
            month,
            zone=agency_zone(),
            now=utcnow(),
            actor=actor,
            render_pdf=timed_render,
        )
        rerun_ms = (time.perf_counter() - again) * 1000
        db.session.rollback()
        db.engine.dispose()

    mean = statistics.mean(per_statement)
    mean_lines = statistics.mean(lines)
    db_ms = [t - p for t, p in zip(per_statement, pdf_ms, strict=False)]
    print(f"\nbaseline: WeasyPrint, bare one-page document: {base:.1f} ms (median)")
    print(f"{len(per_statement)} statements, {mean_lines:,.0f} lines each: total {total:.1f} s")
    print(f"{'':<22}{'mean ms':>10}{'p50 ms':>10}{'max ms':>10}")
    for name, samples in (
        ("per statement", per_statement),
        ("  of which PDF", pdf_ms[: len(per_statement)]),
        ("  of which the rest", db_ms),
    ):
        print(
            f"{name:<22}{statistics.mean(samples):>10.0f}{statistics.median(samples):>10.0f}"
            f"{max(samples):>10.0f}"
        )
    print(f"\nper statement ÷ baseline: {mean / base:.1f}")
    print(
        f"beyond 2× the baseline: {(mean - 2 * base) / mean_lines:.2f} ms per line "
        f"(goal: a few ms per line)"
    )
    print(f"re-running an issued statement: {rerun_ms:.1f} ms")
    pdf_s = sum(pdf_ms[: len(per_statement)]) / 1000
    print(
        f"PDF: {sum(pages):,} pages in {pdf_s:.1f} s, {sum(pages) / pdf_s:.1f} pages/s, "
        f"{sum(lines) / pdf_s:,.0f} lines/s"
    )
    print(
        f"baseline 2, a bare SQL sum of the client's month: {sql_sum_ms:.1f} ms; "
        f"the statement without its PDF ÷ it: {statistics.mean(db_ms) / sql_sum_ms:.0f}"
    )
    if args.small:
        drop_database(args.database, args.postgres_server)
    return {
        "statements": len(per_statement),
        "lines": lines,
        "pdfs": pdfs,
        "pages": pages,
        "seconds": total,
        "pdf_seconds": pdf_s,
        "sql_sum_ms": sql_sum_ms,
    }


if __name__ == "__main__":
    main()
