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
import re
import statistics
import time
from dataclasses import dataclass

from bench import book
from bench.common import (
    add_database_arguments,
    bench_app,
    bench_database,
    copy,
    drop_database,
    p95,
    timed,
)

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


FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Chris Lisa Daniel Nancy Matthew "
    "Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Paul Emily Andrew Donna "
    "Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie "
    "Ronald Rebecca Jason Laura Edward Sharon Jeffrey Cynthia Ryan Kathleen Jacob Amy"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
    "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres "
    "Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts "
    "Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales "
    "Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos "
    "Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes "
    "Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez"
).split()
# Of every 100 cases, how many in each status (the queue's book: open cases only).
OPEN_BOOK = (("active", 60), ("new", 20), ("plan", 20))


@dataclass(frozen=True)
class Shape:
    """What a filled book looks like beyond its size: clients, statuses, and how many ledger
    entries (placement + this many payments and adjustments on average) and contacts a case
    has. The default is bench.queue's: one client, open cases, a placement each."""

    clients: int = 1
    statuses: tuple[tuple[str, int], ...] = OPEN_BOOK
    entries_after_placement: int = 0  # on average: each case gets 0..2x this many
    contacts_per_case: float = 0.5
    client_code: str = "BENCH"


def reference_of(i: int) -> str:
    """Case i's reference (i from 1): RC-2611-000001 up to RC-2611-99999999."""
    return f"RC-2611-{i:06d}"[:16]


def account_of(i: int) -> str:
    """Case i's account number: ten digits, distinct for every i below 10**10 (the multiplier
    is prime to 10), so they look random and a search by account number finds one case."""
    return f"{i * 7_919_113 % 10**10:010d}"


def _mix(i: int, salt: int) -> int:
    """A cheap deterministic pseudo-random number for case i: the same in every table's rows."""
    return ((i * 2_654_435_761) ^ (salt * 40_503 + (i >> 11))) % 4_294_967_291


def _status_of(i: int, statuses: tuple[tuple[str, int], ...]) -> str:
    pick = _mix(i, 1) % sum(w for _, w in statuses)
    for status, weight in statuses:
        if pick < weight:
            return status
        pick -= weight
    raise AssertionError


FILLED = (
    "debtors",
    "debtor_addresses",
    "debtor_phones",
    "cases",
    "ledger_entries",
    "contacts",
    "promises_to_pay",
)


def _set_aside_indexes(conn) -> list[str]:
    """Drop the filled tables' indexes other than their constraints' (primary keys, unique),
    and turn foreign-key checks off for this session; their CREATE INDEX statements. A bulk load
    builds an index once from all its rows far faster than it updates it row by row, and checks
    rows it made consistent itself in vain (the usual way of loading a big table)."""
    conn.execute("SET session_replication_role = replica")  # no FK triggers (superuser)
    conn.execute("SET maintenance_work_mem = '512MB'")
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [list(FILLED)],
    ).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def _rebuild_indexes(conn, definitions: list[str]) -> None:
    for definition in definitions:
        conn.execute(definition)
    conn.execute("SET session_replication_role = DEFAULT")


def fill(app, n_cases: int, n_collectors: int = COLLECTORS, shape: Shape = Shape()) -> None:
    """Fill the book by COPY: n_cases cases spread over the collectors and the clients, each
    with its debtor (name from a few thousand first/last combinations), address, phone and
    ledger entries, and the contacts. Users are made through the app (the first collector's
    password hash is reused for the rest: hashing is slow on purpose)."""
    from cases import audit
    from cases.case import search_text_of
    from cases.clients import create_client
    from cases.users import User, create_user
    from payments.fees import parse_tiers, set_schedule
    from shell.extensions import db

    actor = audit.Actor(None, "bench")
    with app.app_context():
        clients = []
        for j in range(shape.clients):
            code = shape.client_code if shape.clients == 1 else f"{shape.client_code}{j:02d}"
            client = create_client(db.session, code, f"Bench Co {j}", actor=actor)
            set_schedule(db.session, client, parse_tiers("90=2500"), actor=actor)
            clients.append(client)
        first = create_user(db.session, "c0@bench.test", PASSWORD, "collector", actor=actor)
        others = [
            User(email=f"c{i}@bench.test", password_hash=first.password_hash, role="collector")
            for i in range(1, n_collectors)
        ]
        db.session.add_all(others)
        create_user(
            db.session, "client@bench.test", PASSWORD, "client", actor=actor, client=clients[0]
        )
        db.session.flush()
        collectors = [first.id] + [u.id for u in others]
        client_ids = [c.id for c in clients]
        db.session.commit()
        # End the transaction reading the ids opened: a snapshot held open would keep VACUUM
        # below from marking the new rows visible to all (and so index-only scans from working).
        db.session.close()
        with book.connection(db.engine) as conn:
            indexes = _set_aside_indexes(conn)
            now = dt.datetime.now(dt.UTC)
            today = now.date()
            cases = range(1, n_cases + 1)
            # Dates and times looked up, not computed per row (the fill is CPU-bound in Python).
            days_ago = [today - dt.timedelta(days=d) for d in range(721)]
            hours_ago = [now - dt.timedelta(hours=h) for h in range(61 * 24)]
            n_first, n_last, n_places = len(FIRST_NAMES), len(LAST_NAMES), len(PLACES)

            def names_of(i):
                return FIRST_NAMES[_mix(i, 2) % n_first], LAST_NAMES[_mix(i, 3) % n_last]

            def debtor_row(i):
                first_name, last_name = names_of(i)
                postal = PLACES[i % n_places][1]
                key = f"consumer|{first_name.lower()} {last_name.lower()}|{postal}"
                return (i, first_name, last_name, key)

            book.debtors(conn, map(debtor_row, cases), now=now)
            book.addresses(conn, cases, lambda i: ("Town", *PLACES[i % n_places][:2]))
            copy(
                conn,
                "debtor_phones",
                ["id", "debtor_id", "number", "type", "text_consent"],
                (
                    (i, i, f"+1{PLACES[i % n_places][2]}555{i % 10000:04d}", "mobile", False)
                    for i in cases
                ),
            )
            n_clients = len(client_ids)

            def case_row(i):
                status = _status_of(i, shape.statuses)
                account = account_of(i)
                referred = days_ago[_mix(i, 4) % 720]
                last_contact = None
                if status in ("active", "plan") or _mix(i, 5) % 5:
                    last_contact = hours_ago[(_mix(i, 6) % 60 + 1) * 24]
                return (
                    i,
                    reference_of(i),
                    client_ids[i % n_clients],
                    i,
                    account,
                    account if status in ("new", "active", "plan", "disputed") else None,
                    status,
                    referred,
                    referred - dt.timedelta(days=170),
                    referred - dt.timedelta(days=170),
                    170,
                    "recalled" if status == "closed" else None,
                    collectors[i % n_collectors],
                    last_contact,
                    search_text_of(reference_of(i), account, *names_of(i)),
                )

            book.cases(
                conn,
                map(case_row, cases),
                now=now,
                extra=("close_reason", "assigned_to_id", "last_contact_at", "search_text"),
            )
            extra = shape.entries_after_placement

            def entries():
                k = 0
                for i in cases:
                    placed = 100_000 + _mix(i, 7) % 800_000
                    on = days_ago[200]
                    k += 1
                    yield (k, i, "placement", "principal", placed, 0, 0, f"bench:{k}", on)
                    if not extra:
                        continue
                    status = _status_of(i, shape.statuses)
                    count = _mix(i, 8) % (2 * extra + 1)
                    paid_off = status in ("paid", "settled")
                    if paid_off:  # paid in instalments that add up to the placement
                        count = max(count, 1)
                    for n in range(count):
                        k += 1
                        on = days_ago[(n * 37 + i) % 180]
                        kind = "payment"
                        if paid_off:
                            amount = -(placed // count) - (placed % count if n == 0 else 0)
                        elif (i + n) % 7 == 0:
                            amount, kind = -(1_000 + _mix(i, n) % 9_000), "adjustment"
                        else:
                            amount = -(2_000 + _mix(i, n) % 18_000)
                        bps = 2500 if kind == "payment" else 0
                        fee = -amount * bps // 10_000
                        yield (k, i, kind, None, amount, bps, fee, f"bench:{k}", on)

            book.entries(conn, entries(), now=now)
            book.calls(
                conn,
                (
                    (k, 1 + (k * 7) % n_cases, hours_ago[(_mix(k, 9) % 60) * 24 + k % 12])
                    for k in range(1, int(n_cases * shape.contacts_per_case) + 1)
                ),
                now=now,
            )
            book.promises(
                conn,
                ((k, k * 97 % n_cases + 1, today) for k in range(1, n_cases // 100 + 1)),
                created_at=now,
            )
            _rebuild_indexes(conn, indexes)
            book.finish(conn, FILLED)  # vacuumed: the queue's index-only scan skips the heap


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

    from shell.extensions import db

    app = bench_app(bench_database(args))
    start = time.perf_counter()
    collectors = 2 if args.small else COLLECTORS  # each a password hash: slow on purpose
    fill(app, args.cases, collectors)
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
    mine = shown or [reference_of(1)]
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
