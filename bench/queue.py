"""Benchmark: the collector's queue and the case screen on a big book of business.

Fills PostgreSQL with N open cases (default 200,000) across 20 collectors, then times the
queue page and the case screen through the real app (Flask test client, signed in) and, in
the same run, a baseline: /healthz (one query through the same stack). Prints p50/p95 server
times and the ratio to the baseline.

    .venv/bin/python -m bench.queue [--cases 200000] [--requests 40] [--small]

`--small` (100 cases, 2 collectors, 3 requests; seconds) is the test suite's run (tests/bench/): it fails as
the full run would if a schema change broke the fill or the pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import time

from bench.common import add_database_arguments, copy, drop_database, reset_database

DATABASE = "recourse_bench_queue"
COLLECTORS = 20
PASSWORD = "bench-password-1"
PLACES = [
    ("NY", "10001", "212"),
    ("IL", "60601", "312"),
    ("TX", "75201", "214"),
    ("CA", "94103", "415"),
    ("WA", "98101", "206"),
    ("MA", "02108", "617"),
]


def fill(app, n_cases: int, n_collectors: int = COLLECTORS) -> list[str]:
    from cases import audit
    from cases.clients import create_client
    from cases.users import create_user
    from payments.fees import parse_tiers, set_schedule
    from shell.extensions import db

    rng = random.Random(7)
    actor = audit.Actor(None, "bench")
    with app.app_context():
        client = create_client(db.session, "BENCH", "Bench Co", actor=actor)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=actor)
        collectors = [
            create_user(db.session, f"c{i}@bench.test", PASSWORD, "collector", actor=actor).id
            for i in range(n_collectors)
        ]
        db.session.commit()
        client_id = client.id
        # End the transaction reading the id opened: a snapshot held open would keep VACUUM
        # below from marking the new rows visible to all (and so index-only scans from working).
        db.session.close()
        raw = db.engine.raw_connection()
        try:
            conn = raw.driver_connection
            now = dt.datetime.now(dt.UTC)
            today = now.date()
            references = [f"RC-2611-{i:06d}"[:16] for i in range(1, n_cases + 1)]
            places = [rng.choice(PLACES) for _ in range(n_cases)]
            copy(
                conn,
                "debtors",
                [
                    "id",
                    "kind",
                    "first_name",
                    "last_name",
                    "company_name",
                    "match_key",
                    "language",
                    "situation",
                    "inconvenient_times",
                    "created_at",
                ],
                (
                    (
                        i,
                        "consumer",
                        "Pat",
                        f"Name{i}",
                        "",
                        f"consumer|pat name{i}|{places[i - 1][1]}",
                        "en",
                        "unknown",
                        "[]",
                        now,
                    )
                    for i in range(1, n_cases + 1)
                ),
            )
            copy(
                conn,
                "debtor_addresses",
                ["id", "debtor_id", "line1", "line2", "city", "state", "postal_code"],
                (
                    (i, i, f"{i} Main St", "", "Town", places[i - 1][0], places[i - 1][1])
                    for i in range(1, n_cases + 1)
                ),
            )
            copy(
                conn,
                "debtor_phones",
                ["id", "debtor_id", "number", "type", "text_consent"],
                (
                    (i, i, f"+1{places[i - 1][2]}555{i % 10000:04d}", "mobile", False)
                    for i in range(1, n_cases + 1)
                ),
            )
            copy(
                conn,
                "cases",
                [
                    "id",
                    "reference",
                    "client_id",
                    "debtor_id",
                    "account_number",
                    "open_account_number",
                    "status",
                    "assigned_to_id",
                    "referred_on",
                    "due_date",
                    "itemization_date",
                    "days_past_due_at_referral",
                    "in_legal",
                    "status_changed_at",
                    "created_at",
                    "last_contact_at",
                ],
                (
                    (
                        i,
                        references[i - 1],
                        client_id,
                        i,
                        f"A{i}",
                        f"A{i}",
                        rng.choice(("active", "active", "active", "new", "plan")),
                        collectors[i % n_collectors],
                        today - dt.timedelta(days=30),
                        today - dt.timedelta(days=200),
                        today - dt.timedelta(days=200),
                        170,
                        False,
                        now,
                        now,
                        None if rng.random() < 0.2 else now - dt.timedelta(days=rng.randint(1, 60)),
                    )
                    for i in range(1, n_cases + 1)
                ),
            )
            copy(
                conn,
                "ledger_entries",
                [
                    "id",
                    "case_id",
                    "kind",
                    "component",
                    "amount_cents",
                    "fee_bps",
                    "fee_cents",
                    "external_id",
                    "received_at",
                    "created_at",
                ],
                (
                    (
                        i,
                        i,
                        "placement",
                        "principal",
                        rng.randint(5_000, 900_000),
                        0,
                        0,
                        f"bench:{i}",
                        today - dt.timedelta(days=200),
                        now,
                    )
                    for i in range(1, n_cases + 1)
                ),
            )
            copy(
                conn,
                "contacts",
                [
                    "id",
                    "case_id",
                    "channel",
                    "direction",
                    "outcome",
                    "occurred_at",
                    "violations",
                    "created_at",
                ],
                (
                    (
                        k,
                        1 + (k * 7) % n_cases,
                        "call",
                        "outbound",
                        "no_answer",
                        now - dt.timedelta(days=rng.randint(0, 10), hours=rng.randint(0, 12)),
                        "[]",
                        now,
                    )
                    for k in range(1, n_cases // 2 + 1)
                ),
            )
            copy(
                conn,
                "promises_to_pay",
                ["id", "case_id", "amount_cents", "due_on", "status", "created_at"],
                (
                    (k, k * 97 % n_cases + 1, 5_000, today, "open", now)
                    for k in range(1, n_cases // 100 + 1)
                ),
            )
            for table in (
                "debtors",
                "debtor_addresses",
                "debtor_phones",
                "cases",
                "ledger_entries",
                "contacts",
                "promises_to_pay",
            ):
                # The table names are our own constants, not input.
                setval = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                conn.execute(setval + f"(SELECT max(id) FROM {table}))")  # noqa: S608
            conn.commit()
            # A live database is vacuumed by autovacuum; a table just filled by COPY is not, and
            # without a visibility map no index-only scan can skip the heap (the queue's can).
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE)")
        finally:
            raw.close()
    return references


def timed(client, path: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, help="200,000 (--small: 100)")
    parser.add_argument("--requests", type=int, help="40 (--small: 3)")
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    if args.cases is None:
        args.cases = 100 if args.small else 200_000
    if args.requests is None:
        args.requests = 3 if args.small else 40

    from flask_migrate import upgrade

    from agency import create_app
    from shell.extensions import db

    url = reset_database(args.database, args.postgres_server)
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "SECRET_KEY": "bench",
            "SESSION_COOKIE_SECURE": False,
            "WTF_CSRF_ENABLED": False,
            "MFA_REQUIRED": False,  # the pages are measured, not the sign-in
        }
    )
    with app.app_context():
        upgrade()
    start = time.perf_counter()
    collectors = 2 if args.small else COLLECTORS  # each a password hash: slow on purpose
    references = fill(app, args.cases, collectors)
    print(
        f"filled {args.cases:,} open cases across {collectors} collectors "
        f"in {time.perf_counter() - start:.1f} s"
    )

    client = app.test_client()
    response = client.post("/login", data={"email": "c0@bench.test", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    timed(client, "/healthz", 5)  # warm up
    timed(client, "/agency/queue", 3)
    baseline = timed(client, "/healthz", args.requests)
    queue = timed(client, "/agency/queue", args.requests)
    page = client.get("/agency/queue").get_data(as_text=True)
    shown = re.findall(r"/agency/cases/(RC-[0-9-]+)", page)
    mine = shown or references[:1]
    case_samples = []
    for i in range(args.requests):
        case_samples += timed(client, f"/agency/cases/{mine[i % len(mine)]}", 1)

    print(f"\n{'page':<14}{'p50 ms':>9}{'p95 ms':>9}{'ratio p95 to /healthz':>24}")
    base95 = p95(baseline)
    for name, samples in (("/healthz", baseline), ("queue", queue), ("case screen", case_samples)):
        print(
            f"{name:<14}{statistics.median(samples):>9.1f}{p95(samples):>9.1f}"
            f"{p95(samples) / base95:>24.1f}"
        )
    print(f"\ncases per collector: {args.cases // collectors:,}; target p95 < 200 ms each")
    with app.app_context():
        db.engine.dispose()
    if args.small:
        drop_database(args.database, args.postgres_server)
    return {
        "healthz_p95_ms": base95,
        "queue_p95_ms": p95(queue),
        "case_p95_ms": p95(case_samples),
        "cases_shown": len(shown),
    }


if __name__ == "__main__":
    main()
