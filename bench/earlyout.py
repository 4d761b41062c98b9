"""Benchmark: the daily early-out run (`earlyout run`) over N accounts in reminders.

Fills a database with N early-out accounts (default 200,000) of one client, aged 1 to 95 days
past due, each with the steps before today already sent; today's run then sends the step due
to those on a cadence day (about 5 in 95) and converts those past day 90 (about 6 in 95). In the
same run, the baseline: a bare query of the due accounts (the ids and last steps the run starts
from). Prints both times and their ratio, and checks that a second run sends nothing.

The cadence is email/text only (1:email, 7:text, 15:email, 30:email, 60:email): a letter is a
WeasyPrint PDF each, a cost of its own. The delivery jobs the run queues (the `mail` queue's
work) are not timed.

    .venv/bin/python -m bench.earlyout --database-url postgresql://…/DB [--accounts 200000]

The database's schema is dropped and made again: give it one of your own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import sqlalchemy as sa

CADENCE = "1:email,7:text,15:email,30:email,60:email"
AGES = 95  # accounts are 1..95 days past due
CHUNK = 10_000


def _chunks(rows, size=CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def fill(session, n: int, today: dt.date) -> int:
    """N early-out accounts of client EOBENCH; returns the client's id. Their earlier steps are
    recorded as sent, as the runs of the days before would have left them."""
    from cases import audit
    from cases.case import Case
    from cases.clients import create_client
    from cases.debtors import Address, Debtor, Email, Phone
    from cases.early_out import EarlyOutReminder, parse_cadence, set_terms
    from cases.ledger import LedgerEntry
    from cases.model import new_stamp, utcnow

    actor = audit.Actor(None, "bench")
    client = create_client(session, "EOBENCH", "Bench Bakery", actor=actor)
    set_terms(session, client, actor=actor, cadence=parse_cadence(CADENCE))
    session.flush()
    days = [1, 7, 15, 30, 60]
    now = utcnow()
    first_debtor = (session.scalar(sa.select(sa.func.max(Debtor.id))) or 0) + 1
    first_case = (session.scalar(sa.select(sa.func.max(Case.id))) or 0) + 1
    ages = [1 + i % AGES for i in range(n)]
    debtor_ids = [first_debtor + i for i in range(n)]
    case_ids = [first_case + i for i in range(n)]
    tables = [
        (
            Debtor,
            [
                {
                    "id": d,
                    "kind": "consumer",
                    "first_name": "Pat",
                    "last_name": f"Name{d}",
                    "company_name": "",
                    "match_key": f"consumer|pat name{d}|10001",
                    "language": "es" if d % 5 == 0 else "en",
                    "situation": "unknown",
                    "inconvenient_times": [],
                    "monthly_statements": False,
                    "created_at": now,
                }
                for d in debtor_ids
            ],
        ),
        (
            Address,
            [
                {
                    "debtor_id": d,
                    "line1": f"{d} Main St",
                    "line2": "",
                    "city": "New York",
                    "state": "NY",
                    "postal_code": "10001",
                }
                for d in debtor_ids
            ],
        ),
        (Email, [{"debtor_id": d, "address": f"pat{d}@example.com"} for d in debtor_ids]),
        (
            Phone,
            [
                {
                    "debtor_id": d,
                    "number": f"+1212{d % 10_000_000:07d}",
                    "type": "mobile",
                    "text_consent": True,
                }
                for d in debtor_ids
            ],
        ),
        (
            Case,
            [
                {
                    "id": c,
                    "reference": f"RE-{c:08d}",
                    "client_id": client.id,
                    "debtor_id": d,
                    "account_number": f"EO{c}",
                    "open_account_number": f"EO{c}",
                    "status": "new",
                    "program": "early_out",
                    "early_out_placed_on": today - dt.timedelta(days=age),
                    "early_out_converts": True,
                    "referred_on": today - dt.timedelta(days=age),
                    "due_date": today - dt.timedelta(days=age),
                    "itemization_date": today - dt.timedelta(days=age),
                    "days_past_due_at_referral": 0,
                    "in_legal": False,
                    "status_changed_at": now,
                    "created_at": now,
                    "stamp": new_stamp(),
                }
                for c, d, age in zip(case_ids, debtor_ids, ages, strict=True)
            ],
        ),
        (
            LedgerEntry,
            [
                {
                    "case_id": c,
                    "kind": "placement",
                    "component": "principal",
                    "amount_cents": 10_000 + c % 50_000,
                    "fee_bps": 0,
                    "fee_cents": 0,
                    "external_id": f"placement:RE-{c:08d}:principal",
                    "received_at": today - dt.timedelta(days=age),
                    "created_at": now,
                }
                for c, age in zip(case_ids, ages, strict=True)
            ],
        ),
        (
            EarlyOutReminder,
            [
                {
                    "case_id": c,
                    "day": max(day for day in days if day < age),
                    "channel": "email",
                    "tone": "friendly",
                    "language": "en",
                    "sent_on": today - dt.timedelta(days=1),
                    "created_at": now,
                }
                for c, age in zip(case_ids, ages, strict=True)
                if age > 1
            ],
        ),
    ]
    for model, rows in tables:
        for chunk in _chunks(rows):
            session.execute(sa.insert(model), chunk)
    session.flush()
    return client.id


def baseline(session, today: dt.date) -> int:
    """The bare query of the due accounts: what the run reads before it does anything."""
    from cases.early_out import clients_in_early_out, due_candidates, terms_of

    found = 0
    for client_id in clients_in_early_out(session):
        found += len(session.execute(due_candidates(terms_of(session, client_id), today)).all())
    return found


def measure(session, n: int, today: dt.date) -> dict:
    """Fill, then time the baseline and the run (in the caller's transaction, without its
    commit); the run again must send and convert nothing."""
    from cases.jobs import take_pending
    from correspondence.early_out_messages import run_due

    start = time.perf_counter()
    fill(session, n, today)
    filled = time.perf_counter() - start
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("ANALYZE"))
    start = time.perf_counter()
    due = baseline(session, today)
    base = time.perf_counter() - start
    start = time.perf_counter()
    run = run_due(session, today.isoformat())
    session.flush()
    took = time.perf_counter() - start
    again = run_due(session, today.isoformat())
    session.flush()
    take_pending(session)  # the delivery jobs are the mail queue's work, not timed here
    return {
        "accounts": n,
        "fill_s": filled,
        "due_accounts": due,
        "baseline_s": base,
        "run_s": took,
        "sent": len(run.sent),
        "held": len(run.held),
        "converted": len(run.converted),
        "again": again.as_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--accounts", type=int, default=200_000)
    args = parser.parse_args()

    import time_machine
    from flask_migrate import upgrade

    from agency import create_app
    from shell.extensions import db

    app = create_app({"DATABASE_URL": args.database_url, "REDIS_URL": "", "SECRET_KEY": "bench"})
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        # 11:00 in New York: inside every debtor's hours, so the rules let the steps go.
        today = dt.date.today()
        with time_machine.travel(
            dt.datetime(today.year, today.month, today.day, 16, tzinfo=dt.UTC)
        ):
            result = measure(db.session, args.accounts, today)
        db.session.rollback()
        db.engine.dispose()
    print(f"filled {result['accounts']:,} early-out accounts in {result['fill_s']:.1f} s")
    print(
        f"baseline: bare query of the due accounts: {result['due_accounts']:,} in "
        f"{result['baseline_s']:.2f} s"
    )
    print(
        f"earlyout run: {result['sent']:,} sent, {result['held']:,} held, "
        f"{result['converted']:,} converted in {result['run_s']:.1f} s"
    )
    print(f"ratio run / baseline: {result['run_s'] / result['baseline_s']:.0f}")
    print(
        f"per step sent or account converted: "
        f"{1000 * result['run_s'] / max(result['sent'] + result['converted'], 1):.2f} ms"
    )
    print(f"second run: {result['again']}")


if __name__ == "__main__":
    main()
