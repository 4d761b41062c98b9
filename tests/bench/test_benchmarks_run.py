"""No benchmark rots (issue 21): each benchmark in bench/ runs in its small mode (seconds), on
the suite's database where it applies, so a schema or page change that breaks one fails here.

bench.referrals runs on SQLite and PostgreSQL; bench.queue, bench.national, bench.case_screen,
bench.statements, bench.portal, bench.horizontal and bench.nightly fill PostgreSQL by COPY or
serve it under gunicorn, and run in the PostgreSQL run only. Each makes a database of its own on the suite's server, named after the suite's database, and
drops it after."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from bench import (
    case_screen,
    horizontal,
    national,
    nightly,
    portal,
    queue,
    referrals,
    reports,
    statements,
)

URL = os.environ.get("TEST_DATABASE_URL", "")
ON_POSTGRESQL = URL.startswith("postgres")
postgresql_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL benchmark")


def own_database(name: str) -> list[str]:
    """A database for the benchmark beside the suite's, on the same server."""
    suite = sa.make_url(URL).database
    return ["--database", f"{suite}_{name}", "--postgres-server", URL]


def test_the_referral_import_benchmark_runs(capsys):
    if ON_POSTGRESQL:
        suite = sa.make_url(URL)
        server = suite.set(database=f"{suite.database}_bench_referrals")
        argv = ["--databases", "postgresql", "--postgres-url", server.render_as_string(False)]
    else:
        argv = ["--databases", "sqlite"]
    assert referrals.main(["--small", *argv]) == 0
    out = capsys.readouterr().out
    assert "rows written by the import: debtors 59" in out  # 60 rows, one deliberately wrong
    assert "rows written by the baseline: debtors 59" in out


@postgresql_only
def test_the_queue_benchmark_runs():
    result = queue.main(["--small", *own_database("bench_queue")])
    assert result["cases_shown"] > 0
    assert result["queue_p95_ms"] > 0 and result["case_p95_ms"] > 0


@postgresql_only
def test_the_national_benchmark_runs():
    result = national.main(["--small", *own_database("bench_national")])
    assert result["rows"]["cases"] == 400 and result["rows"]["contacts"] == 800
    assert result["rows"]["ledger_entries"] > 400  # placements, payments and adjustments
    assert result["cases_shown"] > 0 and result["heading"] == "200"
    assert all(ms > 0 for ms in result["p95_ms"].values()), result["p95_ms"]


@postgresql_only
def test_the_case_screen_benchmark_runs():
    result = case_screen.main(["--small", *own_database("bench_case_screen")])
    assert result["forms"] >= 15  # every action of the screen, each a form with its token
    assert 0 < result["render_p50_ms"] < result["case_p50_ms"]
    assert 0 < result["sql_p50_ms"] < result["case_p50_ms"]


@postgresql_only
def test_the_statements_benchmark_runs():
    result = statements.main(["--small", *own_database("bench_statements")])
    assert result["statements"] == 2
    assert result["lines"] == [20, 20] and result["pdfs"] == [b"%PDF-", b"%PDF-"]


@postgresql_only
def test_the_portal_benchmark_runs():
    result = portal.main(["--small", *own_database("bench_portal")])
    assert result["errors"] == 0
    assert all(count > 0 for count in result["requests"].values()), result["requests"]


@postgresql_only
def test_the_horizontal_benchmark_runs():
    redis = ["--redis-url", os.environ.get("TEST_REDIS_URL", "")]
    result = horizontal.main(["--small", *own_database("bench_horizontal"), *redis])
    assert result["errors"] == 0
    assert all(count > 0 for count in result["requests"].values()), result["requests"]
    assert all(result["per_server"]), result["per_server"]  # the load reached both servers
    if redis[1]:
        assert result["page_entries"] == 1  # one rendered page, shared by both servers


@postgresql_only
def test_the_nightly_jobs_benchmark_runs():
    results = nightly.main(["--small", *own_database("bench_nightly")])
    by_job = {r["job"]: r for r in results}
    assert set(by_job) == {
        "promises check",
        "reminders send",
        "plans charge-due",
        "notices send",
        "earlyout run",
    }
    for r in results:
        assert r["acted"] > 0, r["job"]  # each job found its due rows and did them
        assert r["again"] == 0, r["job"]  # and a second run does nothing
        assert r["plans"], r["job"]  # the second run's selections were EXPLAINed


@postgresql_only
def test_the_reports_benchmark_runs():
    result = reports.main(["--small", *own_database("bench_reports")])
    # The pages read the totals: the client's never the ledger, the agency's only for the
    # promises' own cases (docs/reports.md).
    assert result["statements"]["client"][1] == 0
    assert result["agency_p95_ms"] > 0 and result["client_p95_ms"] > 0
    assert result["totals_rows"]["report_money"] > 0
