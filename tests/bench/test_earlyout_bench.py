"""The early-out benchmark's small mode (bench/earlyout.py): the same fill, baseline and run as
the 200,000-account figures in docs/benchmarks.md, on a few hundred accounts."""

import datetime as dt

import time_machine

from bench.earlyout import AGES, measure


def test_the_benchmark_runs_small_and_the_run_is_idempotent(db_session):
    today = dt.date(2026, 11, 23)
    with time_machine.travel(dt.datetime(2026, 11, 23, 16, tzinfo=dt.UTC)):
        result = measure(db_session, 2 * AGES, today)
    # Twice over ages 1..95: each cadence day (1, 7, 15, 30, 60) once per round; days 90..95
    # convert.
    assert result["sent"] == 2 * 5 and result["held"] == 0
    assert result["converted"] == 2 * 6
    assert result["due_accounts"] == result["sent"]
    assert result["again"] == {"sent": 0, "converted": []}
