"""Benchmark: where the case screen's time goes (issue 21) — its template, its SQL, the rest.

Fills PostgreSQL by COPY with a small book in the national shape (bench.national's: ledger
entries, contacts, statuses; the page reads only the case's own rows, so the book's size does
not change it), signs a collector in with CSRF on (as in production: every form carries its
token; `--csrf-off` as bench.national runs), then requests /healthz and a case screen in turn,
N times each, and prints p50/p95 of each with, per case screen, the time spent rendering
`agency/case.html` (Flask's template signals) and in the database driver (SQLAlchemy's cursor
events). `--profile` then runs 20 more case screens under cProfile and prints the top of it by
cumulative time.

    .venv/bin/python -m bench.case_screen [--cases 2000] [--requests 60] [--profile]
        [--csrf-off] [--reuse --database NAME] [--small]

`--reuse` times a database an earlier run (or bench.national --keep) filled; `--keep` leaves
this one's. `--small` (100 cases, 3 requests) is the test suite's run (tests/bench/).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import re
import statistics
import time

from flask import before_render_template, template_rendered
from sqlalchemy import event

from bench.common import add_database_arguments, bench_app, bench_database, drop_database, p95
from bench.national import SHAPE
from bench.queue import PASSWORD, fill

DATABASE = "recourse_bench_case_screen"
TEMPLATE = "agency/case.html"


def _sign_in(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    response = client.post(
        "/login",
        data={"email": "c0@bench.test", "password": PASSWORD, "csrf_token": token and token[1]},
    )
    assert response.status_code == 302, response.status_code


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, help="2,000 (--small: 100)")
    parser.add_argument("--requests", type=int, help="60 (--small: 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile 20 more case screens")
    parser.add_argument(
        "--csrf-off", action="store_true", help="forms without their token (as bench.national)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the database filled")
    parser.add_argument("--reuse", action="store_true", help="time a kept database, no fill")
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    if args.cases is None:
        args.cases = 100 if args.small else 2_000
    if args.requests is None:
        args.requests = 3 if args.small else 60

    from shell.extensions import db

    app = bench_app(bench_database(args), csrf=not args.csrf_off)
    with app.app_context():
        engine = db.engine
    if not args.reuse:
        fill(app, args.cases, 4, dataclasses.replace(SHAPE, clients=2))

    sql = {"seconds": 0.0}

    @event.listens_for(engine, "before_cursor_execute")
    def _started(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _done(conn, cursor, statement, parameters, context, executemany):
        sql["seconds"] += time.perf_counter() - conn.info.pop("bench_started")

    rendering: list[float] = []
    started: dict[str, float] = {}

    def _before(sender, template, context, **extra):
        if template.name == TEMPLATE:
            started["render"] = time.perf_counter()

    def _after(sender, template, context, **extra):
        if template.name == TEMPLATE:
            rendering.append((time.perf_counter() - started.pop("render")) * 1000)

    before_render_template.connect(_before, app)
    template_rendered.connect(_after, app)

    client = app.test_client()
    _sign_in(client)
    listed = client.get("/agency/queue").get_data(as_text=True)
    references = re.findall(r"/agency/cases/(RC-[0-9-]+)", listed)[:20]
    assert references, "the queue lists no case"
    for reference in references[:5]:  # warm up
        assert client.get(f"/agency/cases/{reference}").status_code == 200
    rendering.clear()
    healthz, page, in_sql = [], [], []
    for i in range(args.requests):
        start = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        healthz.append((time.perf_counter() - start) * 1000)
        sql["seconds"] = 0.0
        start = time.perf_counter()
        response = client.get(f"/agency/cases/{references[i % len(references)]}")
        page.append((time.perf_counter() - start) * 1000)
        in_sql.append(sql["seconds"] * 1000)
        assert response.status_code == 200, response.status_code
    forms = response.get_data(as_text=True).count("<form ")

    rows = [
        ("/healthz", healthz),
        ("case screen", page),
        ("  its template", rendering),
        ("  its SQL", in_sql),
    ]
    print(f"\n{'':<18}{'p50 ms':>9}{'p95 ms':>9}{'p50 / healthz':>15}")
    base = statistics.median(healthz)
    for label, samples in rows:
        print(
            f"{label:<18}{statistics.median(samples):>9.1f}{p95(samples):>9.1f}"
            f"{statistics.median(samples) / base:>15.1f}"
        )
    print(f"\n{forms} forms on the page; {args.requests} requests each")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for i in range(20):
            client.get(f"/agency/cases/{references[i % len(references)]}")
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    with app.app_context():
        db.engine.dispose()
    if not (args.keep or args.reuse):
        drop_database(args.database, args.postgres_server)
    return {
        "healthz_p50_ms": base,
        "case_p50_ms": statistics.median(page),
        "render_p50_ms": statistics.median(rendering),
        "sql_p50_ms": statistics.median(in_sql),
        "forms": forms,
    }


if __name__ == "__main__":
    main()
