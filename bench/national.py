"""Benchmark: a national agency's book (issue 21): the collector's queue, the case screen, and
the client's case list and search over millions of cases.

Fills PostgreSQL by COPY (bench.queue's fill, in the issue's shape): N cases (default
2,000,000) across 200 collectors and 20 clients, three ledger entries a case on average
(placement, payments, adjustments), two contacts a case, statuses as a live book has them and
debtor names from a few thousand first/last combinations. Then, through the real app (Flask
test client, signed in), times p50/p95 of /healthz (the same-run baseline), the collector's
queue, the case screen, and, signed in as a client with N/20 cases, its case list (first page,
a later page, the page after a "Next" link, each sort and status filter) and its search by
debtor last name, reference and account number. Prints a table with each page's ratio to
/healthz and draws it into docs/national.svg.

    .venv/bin/python -m bench.national [--cases 2000000] [--requests 40] [--small]
        [--keep] [--reuse] [--collector K] [--chart docs/national.svg]

`--clients` and `--collectors` change the spread: `--cases 2000000 --clients 4 --collectors 40`
gives each client and collector the book it has at 10,000,000 (500,000 and 50,000 cases).
`--keep` leaves the database for another run; `--reuse` times a database an earlier `--keep`
run filled (after migrating it to the newest schema) instead of filling again. `--collector K`
signs in as collector cK (c0 by default): another collector's pages are not yet in the caches
after an earlier run. `--small` (400 cases, 4 collectors, 2 clients; seconds) is the test
suite's run (tests/bench/).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from html import unescape

from sqlalchemy import event

from bench.chart import write_bars
from bench.common import add_database_arguments, bench_app, bench_database, drop_database
from bench.queue import PASSWORD, Shape, account_of, fill, p95, reference_of, timed

DATABASE = "recourse_bench_national"
COLLECTORS = 200
CLIENTS = 20
# Of every 100 cases: what a live book holds (closed, paid and settled stay on file).
NATIONAL_BOOK = (
    ("new", 8),
    ("active", 42),
    ("plan", 12),
    ("disputed", 2),
    ("paid", 12),
    ("settled", 4),
    ("closed", 20),
)
SHAPE = Shape(
    clients=CLIENTS,
    statuses=NATIONAL_BOOK,
    entries_after_placement=2,
    contacts_per_case=2,
    client_code="NAT",
)
STAFF_GOAL_MS = 50
CLIENT_GOAL_MS = 100


def _next_link(page: str) -> str:
    """The pager's "Next" link on a client case list page."""
    found = re.search(r'<a [^>]*href="([^"]+)"[^>]*>Next', page)
    assert found, "no Next link"
    return unescape(found.group(1))


def client_paths(client, n_cases: int, n_clients: int) -> list[tuple[str, str]]:
    """(label, path) of the client case list pages to time: for the client signed in, whose
    cases are every n_clients-th case from n_clients (bench.queue.fill's spread)."""
    mine = range(n_clients, n_cases + 1, n_clients)
    some = mine[len(mine) // 2]
    later = max(len(mine) // 25 // 10, 2)  # a page a tenth of the way down the list
    first = client.get("/client/cases?sort=reference").get_data(as_text=True)
    after_next = _next_link(first)
    deep = client.get(f"/client/cases?sort=reference&page={later}").get_data(as_text=True)
    deep_next = _next_link(deep)
    paths = [
        ("list: first page", "/client/cases"),
        (f"list: page {later}", f"/client/cases?sort=reference&page={later}"),
        ("list: Next from 1", after_next),
        (f"list: Next from {later}", deep_next),
    ]
    for sort in ("newest", "oldest", "reference", "status"):
        paths.append((f"list: sort {sort}", f"/client/cases?sort={sort}"))
    for status in ("new", "active", "plan", "disputed", "paid", "settled", "closed"):
        paths.append((f"list: status {status}", f"/client/cases?status={status}"))
    paths += [
        ("search: last name", "/client/cases?q=Nguyen"),
        ("search: name, active", "/client/cases?q=nguyen&status=active"),
        ("search: reference", f"/client/cases?q={reference_of(some)}"),
        ("search: account", f"/client/cases?q={account_of(some)}"),
        ("search: no match", "/client/cases?q=Zzyzx"),
    ]
    return paths


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, help="2,000,000 (--small: 400)")
    parser.add_argument("--requests", type=int, help="40 (--small: 3)")
    parser.add_argument("--clients", type=int, help="20 (--small: 2)")
    parser.add_argument("--collectors", type=int, help="200 (--small: 4)")
    parser.add_argument("--keep", action="store_true", help="leave the database filled")
    parser.add_argument(
        "--reuse", action="store_true", help="time a kept database, no fill (and keep it)"
    )
    parser.add_argument("--chart", help="draw the p95 figures into this SVG file")
    parser.add_argument(
        "--collector",
        type=int,
        default=0,
        help="time the queue and case screen of collector cK (0): another one's pages are "
        "not yet in the caches after an earlier run",
    )
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    if args.cases is None:
        args.cases = 400 if args.small else 2_000_000
    if args.requests is None:
        args.requests = 3 if args.small else 40
    collectors, clients = (4, 2) if args.small else (COLLECTORS, CLIENTS)
    collectors, clients = args.collectors or collectors, args.clients or clients

    from shell.extensions import db

    url = bench_database(args)
    start = time.perf_counter()
    app = bench_app(url)
    if args.reuse:
        print(f"migrated the kept database in {time.perf_counter() - start:.1f} s")
    else:
        shape = Shape(**{**SHAPE.__dict__, "clients": clients})
        fill(app, args.cases, collectors, shape)
        print(
            f"filled {args.cases:,} cases across {collectors} collectors and {clients} clients "
            f"in {time.perf_counter() - start:.1f} s"
        )
    with app.app_context():
        from sqlalchemy import text

        counts = {
            table: db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
            for table in ("cases", "ledger_entries", "contacts", "debtors")
        }
        size = db.session.execute(text("SELECT pg_database_size(current_database())")).scalar()
        db.session.close()
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(f"database size: {size / 2**30:.2f} GiB")

    # Statements and their time in the database driver, per page: the count is a figure load
    # does not move; SQL time is the part of a page's time the indexes decide.
    sql = {"queries": 0, "seconds": 0.0}
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _started(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _done(conn, cursor, statement, parameters, context, executemany):
        sql["queries"] += 1
        sql["seconds"] += time.perf_counter() - conn.info.pop("bench_started")

    per_page: dict[str, tuple[float, float]] = {}

    def measured(client, label, path, count):
        sql.update(queries=0, seconds=0.0)
        samples = timed(client, path, count)
        per_page[label] = (sql["queries"] / count, sql["seconds"] * 1000 / count)
        return samples

    results: list[tuple[str, list[float], float]] = []
    n = args.requests
    staff = app.test_client()
    response = staff.post(
        "/login", data={"email": f"c{args.collector}@bench.test", "password": PASSWORD}
    )
    assert response.status_code == 302, response.status_code
    timed(staff, "/healthz", 5)  # warm up
    timed(staff, "/agency/queue", 3)
    baseline = measured(staff, "/healthz", "/healthz", n)
    results.append(("queue", measured(staff, "queue", "/agency/queue", n), STAFF_GOAL_MS))
    page = staff.get("/agency/queue").get_data(as_text=True)
    shown = re.findall(r"/agency/cases/(RC-[0-9-]+)", page)
    mine = shown or [reference_of(collectors)]
    case_samples: list[float] = []
    queries, seconds = 0.0, 0.0
    for i in range(n):
        case_samples += measured(staff, "case screen", f"/agency/cases/{mine[i % len(mine)]}", 1)
        queries, seconds = (
            queries + per_page["case screen"][0],
            seconds + per_page["case screen"][1],
        )
    per_page["case screen"] = (queries / n, seconds / n)
    results.append(("case screen", case_samples, STAFF_GOAL_MS))

    owner = app.test_client()
    response = owner.post("/login", data={"email": "client@bench.test", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    listing = owner.get("/client/cases").get_data(as_text=True)
    heading = re.search(r"<h1>Cases <span[^>]*>\(([^)]*)\)", listing)
    for label, path in client_paths(owner, args.cases, clients):
        timed(owner, path, 1)  # warm up
        results.append((label, measured(owner, label, path, n), CLIENT_GOAL_MS))
    baseline += timed(staff, "/healthz", n)  # the baseline before and after

    base95 = p95(baseline)
    print(
        f"\n{'page':<24}{'p50 ms':>9}{'p95 ms':>9}{'p95 / healthz':>15}{'goal p95':>10}"
        f"{'queries':>9}{'SQL ms':>8}"
    )
    print(
        f"{'/healthz':<24}{statistics.median(baseline):>9.1f}{base95:>9.1f}{1:>15.1f}{'':>10}"
        f"{per_page['/healthz'][0]:>9.0f}{per_page['/healthz'][1]:>8.1f}"
    )
    missed = []
    for label, samples, goal in results:
        late = p95(samples)
        if late >= goal:
            missed.append(label)
        print(
            f"{label:<24}{statistics.median(samples):>9.1f}{late:>9.1f}"
            f"{late / base95:>15.1f}{'< ' + str(goal):>10}"
            f"{per_page[label][0]:>9.0f}{per_page[label][1]:>8.1f}{'' if late < goal else '  MISSED'}"
        )
    print(
        f"\ncases per collector: {args.cases // collectors:,}; per client: "
        f"{args.cases // clients:,}; the client's list says ({heading and heading.group(1)}); "
        f"p95 over the goal: {', '.join(missed) or 'none'}"
    )
    if args.chart:
        write_bars(
            args.chart,
            f"{args.cases:,} cases: p95 per page (goal: staff 50, client 100)",
            "ms",
            [("/healthz", base95)] + [(label, p95(s)) for label, s, _ in results],
            goal=CLIENT_GOAL_MS,
        )
    with app.app_context():
        db.engine.dispose()
    if not (args.keep or args.reuse):  # a reused book is kept for the next run
        drop_database(args.database, args.postgres_server)
    return {
        "healthz_p95_ms": base95,
        "p95_ms": {label: p95(samples) for label, samples, _ in results},
        "queries": {label: queries for label, (queries, _) in per_page.items()},
        "missed": missed,
        "cases_shown": len(shown),
        "rows": counts,
        "heading": heading and heading.group(1),
    }


if __name__ == "__main__":
    main()
