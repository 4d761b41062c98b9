"""Benchmark: the nightly jobs over a big book, each bounded by what is due (issue 21).

Fills PostgreSQL by COPY with N cases (default 2,000,000) of which a small share is due today,
then runs each job once as its command runs it (the domain function, in one session) and a
second time, which must do nothing:

| job | due today (share of the book) | not due (read by no job) |
|---|---|---|
| promises check | 0.05% open promises a day past due | 2% open promises due in 20 days |
| reminders send | those broken promises (a reminder of the miss), 0.02% promises due in 2 days, 0.02% monthly statements not yet sent | 5% statements sent this month |
| plans charge-due | 0.02% autopay installments due today | 4% autopay plans due in 15 days |
| notices send | 0.002% new cases awaiting their validation notice (a PDF each) | every other case, noticed and mailed |
| earlyout run | early-out accounts (2%) on an email step or their conversion day (about 6 in 95) | the others |

The shares are small so that the 2,000,000 run takes minutes on a loaded 2-core machine: each
job's time is its due rows times a cost per row that the book's size does not change (the
table's statements/row column), so a larger share scales by that cost.

For each job: the same-run baseline (a bare SQL count of its due rows), the job's time, the
SQL statements it issued, the rows it acted on, and the EXPLAIN of its selection queries (the
SELECTs of the second run, captured from the engine while the job ran): a `Seq Scan` on a big
table is reported. Prints a table with the ratio job / baseline.

What is timed: the job's own work in the database and in Python, rendering every email, text
and PDF. Not timed: delivering mail and texts (the jobs queue `mail.deliver` / `texts.deliver`
for the mail queue's workers; here they are taken off the session and dropped, as
bench/earlyout.py does). Autopay charges a local Stripe (localstripe, started here): its
time is in the job's.

With --redis-url the jobs the commits queue (autopay's receipts, each a rendered email) go to
RQ there, as in production (the queues are emptied afterwards), and a job's statements are its
own; without, they run in-process after each commit, as the app does without Redis, and are
counted and timed with the job that queued them.

    .venv/bin/python -m bench.nightly [--cases 2000000] [--chart docs/nightly.svg]
        [--redis-url redis://127.0.0.1:6379/N]
    .venv/bin/python -m bench.nightly --small    # 2,000 cases: seconds (tests/bench/)
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bench import book
from bench.common import add_database_arguments, copy, drop_database, reset_database

DATABASE = "recourse_bench_nightly"
BIG_TABLES = (
    "cases",
    "debtors",
    "ledger_entries",
    "contacts",
    "installments",
    "promises_to_pay",
    "sent_reminders",
    "payment_plans",
    "early_out_reminders",
)
CADENCE = "1:email,7:text,15:email,30:email,60:email"
EO_DAYS = (1, 7, 15, 30, 60)
AGES = 95


# --- counting and explaining the statements a job issues ----------------------------------


class Statements:
    """Every SQL statement the engine sends while `capture()` is open (SQLAlchemy's
    before_cursor_execute): a job's statement count and its SELECTs, to EXPLAIN."""

    def __init__(self, engine):
        self.engine = engine
        self.seen: list[tuple[str, object]] = []
        self.took: dict[str, list[float]] = {}  # statement text: seconds of each execution
        self._started = 0.0

    def _on(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append((statement, parameters))
        self._started = time.perf_counter()

    def _done(self, conn, cursor, statement, parameters, context, executemany):
        self.took.setdefault(statement, []).append(time.perf_counter() - self._started)

    @contextmanager
    def capture(self):
        self.seen, self.took = [], {}
        sa.event.listen(self.engine, "before_cursor_execute", self._on)
        sa.event.listen(self.engine, "after_cursor_execute", self._done)
        try:
            yield self
        finally:
            sa.event.remove(self.engine, "before_cursor_execute", self._on)
            sa.event.remove(self.engine, "after_cursor_execute", self._done)

    def slowest(self, n: int = 3) -> list[tuple[float, int, str]]:
        """The statements that took longest in all: (seconds, executions, text)."""
        totals = [(sum(t), len(t), s) for s, t in self.took.items()]
        return sorted(totals, reverse=True)[:n]

    def seconds(self) -> float:
        return sum(sum(t) for t in self.took.values())

    @property
    def selects(self) -> list[tuple[str, object]]:
        return [
            (s, p)
            for s, p in self.seen
            if s.lstrip().upper().startswith(("SELECT", "WITH"))
            and "pg_" not in s  # advisory locks, not a selection
        ]


def explain(connection, statement: str, parameters, *, seqscan: bool = True) -> str:
    """PostgreSQL's plan of a captured statement with its parameters; with `seqscan` False,
    under SET LOCAL enable_seqscan = off (a sequential scan then means no index serves it).
    In a transaction (or savepoint) of its own, rolled back."""
    trans = connection.begin_nested() if connection.in_transaction() else connection.begin()
    try:
        if not seqscan:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters or {}).all()
    finally:
        trans.rollback()
    return "\n".join(row[0] for row in rows)


def seq_scans(plan: str, tables=BIG_TABLES) -> list[str]:
    """The big tables the plan reads by a sequential scan."""
    return sorted({t for t in re.findall(r"Seq Scan on (\w+)", plan) if t in tables})


class TimedGateway:
    """The gateway with the time spent in its calls (Stripe's answers, here localstripe's)
    added up, so a job's own cost can be told from Stripe's."""

    def __init__(self, gateway, spent: list[float] | None = None):
        self._gateway = gateway
        self.spent = spent if spent is not None else [0.0]

    def for_caller(self, caller):
        return TimedGateway(self._gateway.for_caller(caller), self.spent)

    def __getattr__(self, name):
        attribute = getattr(self._gateway, name)
        if not callable(attribute):
            return attribute

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.spent[0] += time.perf_counter() - start

        return timed


# --- the book ------------------------------------------------------------------------------


def kind_of(i: int) -> str:
    """What case i is, by its place in each ten thousand (and fifty thousand)."""
    k = i % 10_000
    if k < 5:
        return "promise_broken"  # 0.05%
    if k < 7:
        return "promise_soon"  # 0.02%
    if k < 9:
        return "autopay_due"  # 0.02%
    if k < 11:
        return "statement_due"  # 0.02%
    if i % 50_000 == 11:
        return "awaiting_notice"  # 0.002%
    k = i % 1000
    if 20 <= k < 60:
        return "autopay_later"  # 4%
    if 60 <= k < 80:
        return "promise_later"  # 2%
    if 100 <= k < 150:
        return "statement_sent"  # 5%
    if 200 <= k < 220:
        return "early_out"  # 2%, about 6 in 95 of them on an email step or converting today
    return "plain"


def fill(app, n: int, today: dt.date, customer: str, card: str) -> None:
    """N cases by COPY (see the module's docstring for who is due)."""
    from cases import audit
    from cases.clients import create_client
    from cases.early_out import parse_cadence, set_terms
    from payments.fees import parse_tiers, set_schedule
    from shell.extensions import db

    actor = audit.Actor(None, "bench")
    with app.app_context():
        client = create_client(db.session, "NIGHT", "Night Co", actor=actor)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=actor)
        eo = create_client(db.session, "NIGHTEO", "Night Bakery", actor=actor)
        set_terms(db.session, eo, actor=actor, cadence=parse_cadence(CADENCE))
        db.session.commit()
        client_id, eo_id = client.id, eo.id
        db.session.close()
        with book.connection(db.engine) as conn:
            _copy_book(conn, n, today, client_id, eo_id, customer, card)


def _copy_book(conn, n, today, client_id, eo_id, customer, card) -> None:
    from cases.model import new_stamp

    now = dt.datetime.now(dt.UTC)
    month = f"{today:%Y-%m}"
    ids = range(1, n + 1)
    kinds = [kind_of(i) for i in ids]

    def kind(i):
        return kinds[i - 1]

    def age(i):  # an early-out account's days past due
        return 1 + (i // 1000) % AGES

    book.debtors(
        conn,
        ((*book.numbered_debtor(i), kind(i) in ("statement_due", "statement_sent")) for i in ids),
        now=now,
        extra=("monthly_statements",),
    )
    book.addresses(conn, ids, lambda i: ("New York", "NY", "10001"))
    copy(
        conn,
        "debtor_emails",
        ["id", "debtor_id", "address", "consent"],
        ((i, i, f"pat{i}@example.com", True) for i in ids),
    )
    status = {
        "autopay_due": "plan",
        "autopay_later": "plan",
        "awaiting_notice": "new",
        "early_out": "new",
    }
    book.cases(
        conn,
        (
            (
                i,
                f"RN-{i:09d}",
                eo_id if early else client_id,
                i,
                f"A{i}",
                f"A{i}",
                status.get(kind(i), "active"),
                today - dt.timedelta(days=age(i) if early else 60),
                today - dt.timedelta(days=age(i) if early else 200),
                today - dt.timedelta(days=age(i) if early else 200),
                0 if early else 140,
                "early_out" if early else "collection",
                today - dt.timedelta(days=age(i)) if early else None,
                None if noticed is False else now - dt.timedelta(days=55),
                None if noticed is False else today - dt.timedelta(days=54),
                None if noticed is False else today - dt.timedelta(days=20),
                new_stamp(),
                {"statement_sent": month, "statement_due": ""}.get(kind(i)),
            )
            for i in ids
            for early in (kind(i) == "early_out",)
            for noticed in (kind(i) not in ("early_out", "awaiting_notice"),)
        ),
        now=now,
        extra=(
            "program",
            "early_out_placed_on",
            "validation_sent_at",
            "validation_mailed_on",
            "validation_period_ends_on",
            "stamp",
            "statement_month",
        ),
        early_out_converts=True,
    )
    book.entries(
        conn,
        (
            (i, i, "placement", "principal", 50_000 + i % 50_000, 0, 0, f"b:{i}", placed)
            for i in ids
            # received the day the case was referred (an early-out account: its due date)
            for placed in (today - dt.timedelta(days=age(i) if kind(i) == "early_out" else 60),)
        ),
        now=now,
    )
    promised = {
        "promise_broken": today - dt.timedelta(days=1),
        "promise_soon": today + dt.timedelta(days=2),
        "promise_later": today + dt.timedelta(days=20),
    }
    book.promises(
        conn,
        ((i, i, promised[kind(i)]) for i in ids if kind(i) in promised),
        created_at=now - dt.timedelta(days=3),
    )
    plans = [i for i in ids if kind(i) in ("autopay_due", "autopay_later")]
    copy(
        conn,
        "payment_plans",
        [
            "id",
            "case_id",
            "total_cents",
            "down_payment_cents",
            "frequency",
            "status",
            "autopay",
            "stripe_customer_id",
            "stripe_payment_method_id",
            "created_at",
        ],
        ((i, i, 30_000, 0, "monthly", "active", True, customer, card, now) for i in plans),
    )
    copy(
        conn,
        "installments",
        ["id", "plan_id", "seq", "due_on", "amount_cents", "status", "attempts"],
        (
            (i, i, 1, today if kind(i) == "autopay_due" else today + dt.timedelta(days=15))
            + (10_000, "scheduled", 0)
            for i in plans
        ),
    )
    copy(
        conn,
        "sent_reminders",
        ["id", "key", "case_id", "kind", "channel", "created_at"],
        (
            (i, f"balance_statement:{i}:{month}:email", i, "balance_statement", "email", now)
            for i in ids
            if kind(i) == "statement_sent"
        ),
    )
    copy(
        conn,
        "early_out_reminders",
        ["id", "case_id", "day", "channel", "tone", "language", "sent_on", "created_at"],
        (
            (i, i, max(d for d in EO_DAYS if d < age(i)), "email", "friendly", "en", today, now)
            for i in ids
            if kind(i) == "early_out" and age(i) > 1
        ),
    )
    book.finish(
        conn,
        (
            "debtors",
            "debtor_addresses",
            "debtor_emails",
            "cases",
            "ledger_entries",
            "promises_to_pay",
            "payment_plans",
            "installments",
            "sent_reminders",
            "early_out_reminders",
        ),
    )


# --- the jobs and their baselines ----------------------------------------------------------


def baselines(today: dt.date) -> dict[str, tuple[sa.TextClause, dict]]:
    """A bare count of each job's due rows: what it must at least read."""
    # The email steps (the accounts have no phone for the day-7 text), and conversions.
    steps = [today - dt.timedelta(days=d) for d in EO_DAYS if d != 7]
    values = {
        "today": today,
        "converts": today - dt.timedelta(days=90),
        "month": f"{today:%Y-%m}",
        "steps": steps,
    }
    queries = {
        "promises check": (
            "SELECT count(*) FROM promises_to_pay WHERE status = 'open' AND due_on < :today"
        ),
        "reminders send": (
            "SELECT (SELECT count(*) FROM promises_to_pay WHERE (status = 'open' "
            "AND due_on BETWEEN :today + 1 AND :today + 3) OR (status = 'broken' "
            "AND due_on BETWEEN :today - 7 AND :today - 1)) + (SELECT count(*) FROM cases c "
            "JOIN debtors d ON d.id = c.debtor_id WHERE d.monthly_statements "
            "AND c.statement_month < :month AND c.status IN ('active', 'plan', 'disputed'))"
        ),
        "plans charge-due": (
            "SELECT count(*) FROM installments WHERE status = 'scheduled' AND due_on = :today"
        ),
        "notices send": (
            "SELECT count(*) FROM cases WHERE status = 'new' AND validation_sent_at IS NULL "
            "AND program = 'collection'"
        ),
        "earlyout run": (
            "SELECT count(*) FROM cases WHERE program = 'early_out' AND status = 'new' "
            "AND (due_date = ANY(:steps) OR due_date <= :converts)"
        ),
    }
    return {name: (sa.text(sql), values) for name, sql in queries.items()}


def jobs(gateway, zone, today: dt.date) -> dict:
    """Each job as its command runs it, returning what it acted on (a count)."""
    from cases.audit import Actor
    from cases.reminders import check_promises
    from correspondence.early_out_messages import run_due
    from correspondence.notice_run import send_notices
    from correspondence.reminder_run import SYSTEM, send_due
    from payments.autopay import charge_due

    def promises(session):
        settled = check_promises(session, today=today, zone=zone, actor=SYSTEM)
        return len(settled["kept"]) + len(settled["broken"])

    def reminders(session):
        run = send_due(session, today.isoformat())
        return len(run.sent) + len(run.kept) + len(run.broken)

    def autopay(session):
        run = charge_due(session, gateway, today=today, zone=zone)
        return len(run.charged) + len(run.failed) + len(run.broken) + len(run.pending)

    def notices(session):
        return len(send_notices(session, today=today, actor=Actor(None, "bench")).sent)

    def earlyout(session):
        run = run_due(session, today.isoformat())
        return len(run.sent) + len(run.converted)

    return {
        "promises check": promises,
        "reminders send": reminders,
        "plans charge-due": autopay,
        "notices send": notices,
        "earlyout run": earlyout,
    }


def measure(app, today: dt.date, gateway) -> list[dict]:
    from cases.jobs import take_pending
    from shell.extensions import db
    from shell.timezone import agency_zone

    results = []
    with app.app_context():
        zone = agency_zone()
        log = Statements(db.engine)
        for name, job in jobs(gateway, zone, today).items():
            start = time.perf_counter()
            query, values = baselines(today)[name]
            due = db.session.execute(query, values).scalar()
            base = time.perf_counter() - start
            db.session.commit()
            gateway.spent[0] = 0.0
            with log.capture():
                start = time.perf_counter()
                acted = job(db.session)
                db.session.flush()
                took = time.perf_counter() - start
            stripe_s = gateway.spent[0]
            statements = len(log.seen)
            in_sql, slowest = log.seconds(), log.slowest()
            take_pending(db.session)  # the deliveries are the mail queue's work, not timed
            db.session.commit()
            with log.capture():
                start = time.perf_counter()
                again = job(db.session)
                db.session.flush()
                again_s = time.perf_counter() - start
            selects = log.selects
            again_statements = len(log.seen)
            take_pending(db.session)
            db.session.commit()
            plans = []
            with db.engine.connect() as conn:
                for statement, parameters in selects:
                    plan = explain(conn, statement, parameters)
                    plans.append((statement, plan, seq_scans(plan)))
            results.append(
                {
                    "job": name,
                    "due": due,
                    "baseline_s": base,
                    "run_s": took,
                    "stripe_s": stripe_s,
                    "statements": statements,
                    "sql_s": in_sql,
                    "slowest": slowest,
                    "acted": acted,
                    "again": again,
                    "again_s": again_s,
                    "again_statements": again_statements,
                    "plans": plans,
                }
            )
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, help="2,000,000 (--small: 2,000)")
    parser.add_argument("--chart", help="write the jobs' times as an SVG bar chart here")
    parser.add_argument("--plans", action="store_true", help="print every EXPLAIN")
    parser.add_argument(
        "--redis-url", default="", help="queue the jobs on RQ there (default: run in-process)"
    )
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    if args.cases is None:
        args.cases = 2_000 if args.small else 2_000_000

    import stripe
    import time_machine
    from flask_migrate import upgrade

    from agency import create_app
    from bench.webhooks import SECRET_KEY, start_localstripe, stop
    from payments.gateway import StripeGateway

    work = Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    url = reset_database(args.database, args.postgres_server)
    localstripe, stripe_url = start_localstripe(work / "localstripe.log")
    try:
        gateway = TimedGateway(StripeGateway(SECRET_KEY, "whsec_bench", api_base=stripe_url))
        api = stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_url})
        customer = gateway.ensure_customer(debtor_id=1, name="Bench Payer", email=None)
        card = api.v1.payment_methods.create(
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
        api.v1.payment_methods.attach(card, params={"customer": customer})
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": args.redis_url,
                "SECRET_KEY": "bench",
                "DOCUMENT_STORE": str(work / "documents"),
            }
        )
        with app.app_context():
            upgrade()
        # 11:00 in New York: inside every debtor's hours, so the rules let the messages go.
        today = dt.date.today()
        with time_machine.travel(
            dt.datetime(today.year, today.month, today.day, 16, tzinfo=dt.UTC)
        ):
            start = time.perf_counter()
            fill(app, args.cases, today, customer, card)
            print(f"filled {args.cases:,} cases by COPY in {time.perf_counter() - start:.1f} s")
            results = measure(app, today, gateway)
        if args.redis_url:
            from cases.jobs import QUEUES

            for name in QUEUES:  # what the jobs queued: the workers' work, not measured here
                app.extensions["recourse.jobs"].queue(name).empty()
        with app.app_context():
            from shell.extensions import db

            db.engine.dispose()
    finally:
        stop(localstripe)
    report(results, args)
    if args.small:
        drop_database(args.database, args.postgres_server)
    return results


def report(results: list[dict], args) -> None:
    print(
        f"\n{'job':<18}{'due':>9}{'baseline s':>12}{'job s':>9}{'ratio':>8}{'statements':>12}"
        f"{'acted on':>10}{'ms/row':>8}{'stmts/row':>10}{'2nd run: acted, statements, s':>32}"
    )
    for r in results:
        print(
            f"{r['job']:<18}{r['due']:>9,}{r['baseline_s']:>12.3f}{r['run_s']:>9.2f}"
            f"{r['run_s'] / max(r['baseline_s'], 1e-6):>8.0f}{r['statements']:>12,}"
            f"{r['acted']:>10,}{1000 * r['run_s'] / max(r['acted'], 1):>8.1f}"
            f"{r['statements'] / max(r['acted'], 1):>10.1f}"
            f"{r['again']:>12}, {r['again_statements']:>5}, {r['again_s']:>7.3f}"
        )
    print("\ntime in SQL and in Stripe's calls (of the job's), and its slowest statements:")
    for r in results:
        own = r["run_s"] - r["stripe_s"]
        print(
            f"  {r['job']:<18}{r['sql_s']:.2f} s SQL, {r['stripe_s']:.2f} s Stripe of "
            f"{r['run_s']:.2f} s (without Stripe: {1000 * own / max(r['acted'], 1):.1f} ms/row)"
        )
        for seconds, count, statement in r["slowest"]:
            print(f"      {seconds:7.2f} s {count:>6}x  " + " ".join(statement.split())[:150])
    print("\nselection queries (the second run's SELECTs), sequential scans on big tables:")
    for r in results:
        scans = sorted({t for _, _, found in r["plans"] for t in found})
        print(
            f"  {r['job']:<18}{len(r['plans'])} SELECT(s); seq scans: {', '.join(scans) or 'none'}"
        )
        if args.plans or scans:
            for statement, plan, _ in r["plans"]:
                print("    " + " ".join(statement.split())[:300])
                print("      " + plan.replace("\n", "\n      "))
    if args.chart:
        from bench.chart import write_bars

        write_bars(
            args.chart,
            f"Nightly jobs over {args.cases:,} cases (seconds; second run in brackets)",
            "s",
            [(f"{r['job']} ({r['again_s']:.2f})", r["run_s"]) for r in results],
        )


if __name__ == "__main__":
    main()
