"""Referral import benchmark: a generated CSV through cases.referrals.import_file, against a bulk
insert of the same rows with no validation (COPY on PostgreSQL, executemany on SQLite).

    .venv/bin/python -m bench.referrals [--rows 100000] [--databases sqlite,postgresql]
                                        [--zips 12] [--profile] [--small]

Each phase runs in a child process of its own (this module again, with --phase) on a fresh
database, so the peak resident memory it reports (getrusage ru_maxrss) is that phase's alone.
Phases: `parse` (the parser alone, no database, once per run), then per database `baseline`,
`dry-run`, `import` and, with --profile, `profile` (the import again under cProfile).

`--small` is the test suite's run (tests/bench/): 60 rows unless --rows says otherwise, every
phase in this process (its memory figures then mean nothing), in seconds; it fails as the full
run would if a schema change broke the import or the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import datetime as dt
import io
import json
import logging
import os
import platform
import pstats
import random
import re
import resource
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine.interfaces import ExecuteStyle

from agency import create_app
from cases import audit, referral_file, referrals
from cases.case import Case, ReferenceCounter
from cases.clients import Client, create_client
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.ledger import LedgerEntry
from cases.referral_file import KNOWN_COLUMNS, MAX_FILE_BYTES, ReferralRow, parse
from cases.referrals import ReferralBatch, import_file
from payments.fees import parse_tiers, set_schedule
from shell.extensions import db
from shell.referral_store import store_referral_file
from shell.settings import database_uri

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 23)
ACTOR = audit.Actor(None, "bench")
CLIENT_CODE = "BENCH"
FILENAME = "referrals.csv"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/recourse_bench"
DATABASES = ("sqlite", "postgresql")
RESULT_MARK = "BENCH-RESULT "
TARGET_SECONDS = 20.0  # issue 6's targets for PostgreSQL at 100,000 rows; issue 21: within 2x
TARGET_RATIO = 2.0
BASELINE_CHUNK_ROWS = (
    10_000  # rows per round of COPY / executemany: keeps the baseline's memory flat
)
INVALID_EVERY = 100  # one row in a hundred is deliberately wrong, so rejections are exercised
MB = 1024 * 1024

# --- the referral file -------------------------------------------------------------------------

# Real ZIP/state pairs; a debtor's phone uses an area code of the ZIP's state.
PLACES = (
    ("10001", "NY", "New York", "212"),
    ("02108", "MA", "Boston", "617"),
    ("60601", "IL", "Chicago", "312"),
    ("75201", "TX", "Dallas", "214"),
    ("94103", "CA", "San Francisco", "415"),
    ("98101", "WA", "Seattle", "206"),
    ("30303", "GA", "Atlanta", "404"),
    ("33130", "FL", "Miami", "305"),
    ("80202", "CO", "Denver", "303"),
    ("19103", "PA", "Philadelphia", "215"),
    ("85004", "AZ", "Phoenix", "602"),
    ("97205", "OR", "Portland", "503"),
)
FIRST_NAMES = (
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Maria Daniel Nancy Matthew Lisa "
    "Anthony Betty Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua "
    "Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Jose "
    "Rebecca Wei Priya Ahmed Fatima Hiroshi Olga Mateo Aisha Dmitri Ngozi Carlos Mei"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Chen Patel Kim "
    "Okafor Ivanova Tanaka Haddad Kowalski Schmidt Rossi Murphy Oconnor"
).split()
STREETS = (
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Park Blvd",
    "Elm St",
    "Lakeview Rd",
    "Washington Ave",
    "2nd St",
    "Hillcrest Way",
)
TRADES = ("Plumbing LLC", "Roofing Inc", "Auto Repair", "Catering Co", "Landscaping LLC")
SERVICES = ("Plumbing repair", "Dental care", "Roof inspection", "Equipment rental", "HVAC service")


@dataclass
class ReferralFile:
    path: Path
    rows: int
    rejected_rows: list[int]  # spreadsheet row numbers (header = 1) the import must reject
    size: int
    zips: int


def generate(path: Path, rows: int, zips: int, seed: int = 20261123) -> ReferralFile:
    """Write a referral CSV with every SPEC §5 column; one row in INVALID_EVERY is wrong."""
    rng = random.Random(seed)
    places = _places(zips, rng)
    rejected: list[int] = []
    previous_account = ""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(KNOWN_COLUMNS)
        for index in range(rows):
            values = _referral(index, rng, places)
            if index % INVALID_EVERY == INVALID_EVERY // 2:
                _spoil(values, index // INVALID_EVERY, previous_account)
                rejected.append(index + 2)
            previous_account = values["account_number"]
            writer.writerow([values.get(column, "") for column in KNOWN_COLUMNS])
    return ReferralFile(path, rows, rejected, path.stat().st_size, len(places))


def _places(count: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """PLACES, plus real ZIPs of the same states up to `count` distinct ZIPs in all."""
    places = list(PLACES)
    if count > len(places):
        import zipcodes  # only for a wider spread of ZIPs

        area_codes = {state: area for _, state, _, area in PLACES}
        known = {zip5 for zip5, *_ in PLACES}
        more = sorted(
            (place["zip_code"], place["state"], place["city"].title(), area_codes[place["state"]])
            for state in area_codes
            for place in zipcodes.filter_by_state(state)
            if place["zip_code_type"] == "STANDARD" and place["zip_code"] not in known
        )
        places += rng.sample(more, min(count - len(places), len(more)))
    return places[:count]


def _referral(index: int, rng: random.Random, places: list) -> dict[str, str]:
    zip5, state, city, area = places[rng.randrange(len(places))]
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    commercial = rng.random() < 0.04
    due = AS_OF - dt.timedelta(days=rng.randint(120, 900))
    return {
        "account_number": f"BN{index:07d}",
        "debtor_type": "commercial" if commercial else "consumer",
        "first_name": "" if commercial else first,
        "last_name": "" if commercial else last,
        "company_name": f"{last} {rng.choice(TRADES)}" if commercial else "",
        "email": f"billing{index}@example.com"
        if commercial
        else f"{first.lower()}.{last.lower()}{index}@example.com",
        "phone": f"({area}) 555-01{rng.randrange(100):02d}",
        "address_line1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
        "address_line2": f"Apt {rng.randint(1, 40)}{rng.choice('ABCD')}"
        if rng.random() < 0.2
        else "",
        "city": city,
        "state": state,
        "postal_code": zip5,
        "principal": _money(rng.randint(5_000, 2_500_000), rng),
        "interest": _money(rng.randint(100, 50_000), rng) if rng.random() < 0.5 else "",
        "fees": _money(rng.randint(500, 5_000), rng) if rng.random() < 0.3 else "",
        "due_date": _day(due, rng),
        "itemization_date": _day(due + dt.timedelta(days=rng.randint(0, 30)), rng)
        if rng.random() < 0.3
        else "",
        "last_payment_date": _day(due - dt.timedelta(days=rng.randint(10, 200)), rng)
        if rng.random() < 0.25
        else "",
        "invoice_number": f"INV-{rng.randint(100_000, 999_999)}" if rng.random() < 0.5 else "",
        "service_description": rng.choice(SERVICES) if rng.random() < 0.5 else "",
    }


def _money(cents: int, rng: random.Random) -> str:
    text = f"{cents // 100}.{cents % 100:02d}"
    return f"${cents // 100:,}.{cents % 100:02d}" if rng.random() < 0.2 else text


def _day(day: dt.date, rng: random.Random) -> str:
    return day.strftime("%m/%d/%Y") if rng.random() < 0.1 else day.isoformat()


def _spoil(values: dict[str, str], kind: int, previous_account: str) -> None:
    """Make one row wrong in one of the ways SPEC §5 rejects."""
    match kind % 8:
        case 0:  # a real ZIP of another state
            values["postal_code"] = "60601" if values["state"] != "IL" else "10001"
        case 1:
            values["phone"] = values["phone"][:-2]
        case 2:
            values["email"] = values["email"].replace("@", " at ")
        case 3:  # under the client's minimum age
            values["due_date"] = (AS_OF - dt.timedelta(days=30)).isoformat()
        case 4:
            values["account_number"] = previous_account
        case 5:
            values["principal"] = "12.5.0"
        case 6:
            values["due_date"] = (AS_OF + dt.timedelta(days=10)).isoformat()
        case _:
            values["state"] = "ZZ"


# --- the parent: generate, run the phases, print the figures -----------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="rows in the file (100,000; --small: 60)")
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help="comma separated: sqlite,postgresql (empty: the parser alone)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="dropped and recreated")
    parser.add_argument(
        "--zips", type=int, default=len(PLACES), help="distinct ZIP codes in the file"
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile the import")
    parser.add_argument(
        "--small", action="store_true", help="the test suite's run: seconds, in this process"
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="comma separated, of parse,baseline,dry-run,import (default: all)",
    )
    parser.add_argument(
        "--keep-file",
        metavar="DIR",
        help="generate the file into DIR and keep it; a file of --rows rows already there is reused",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 60 if args.small else 100_000
    if args.phase:
        return child(args)

    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(databases) - set(DATABASES)
    if unknown:
        parser.error(f"unknown database {', '.join(sorted(unknown))}; use sqlite,postgresql")
    chosen = [name.strip() for name in args.phases.split(",") if name.strip()]
    if set(chosen) - set(PHASES):
        parser.error(f"unknown phase in {args.phases}; use {','.join(PHASES)}")
    with contextlib.ExitStack() as stack:
        if args.keep_file:
            workdir = Path(args.keep_file)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="recourse-bench-"))
            )
        started = time.perf_counter()
        referral = _kept(workdir, args.rows, args.zips)
        if referral is None:
            referral = generate(workdir / FILENAME, args.rows, args.zips)
            expected = {"rejected": referral.rejected_rows, "rows": args.rows, "zips": args.zips}
            (workdir / "expected.json").write_text(json.dumps(expected))
        print(
            f"generated {referral.rows:,} rows ({len(referral.rejected_rows):,} deliberately "
            f"invalid), {referral.zips} distinct ZIPs, {referral.size / MB:.1f} MB "
            f"in {time.perf_counter() - started:.1f} s; as of {AS_OF}"
        )
        if referral.size > MAX_FILE_BYTES:
            print(f"the file is over MAX_FILE_BYTES ({MAX_FILE_BYTES // MB} MB): it is refused")
            return 1

        parsed = run_phase("parse", "none", workdir, args) if "parse" in chosen else None
        results: dict[str, dict[str, dict]] = {}
        for database in databases:
            if database == "postgresql":
                problem = _postgres_problem(args.postgres_url)
                if problem:
                    print(f"PostgreSQL skipped: {args.postgres_url} does not answer ({problem})")
                    continue
            phases = [p for p in PHASES if p != "parse" and p in chosen]
            phases += ["profile"] if args.profile else []
            results[database] = {
                phase: run_phase(phase, database, workdir, args) for phase in phases
            }
        if "postgresql" in results:
            _drop_postgres(args.postgres_url)
    report(referral, parsed, results)
    return 0


PHASES = ("parse", "baseline", "dry-run", "import")


def _kept(workdir: Path, rows: int, zips: int) -> ReferralFile | None:
    """The file --keep-file left in `workdir` earlier, if it has these rows and ZIPs."""
    path, expected = workdir / FILENAME, workdir / "expected.json"
    if not (path.exists() and expected.exists()):
        return None
    kept = json.loads(expected.read_text())
    if kept.get("rows", rows) != rows or kept.get("zips", zips) != zips:
        return None
    return ReferralFile(path, rows, kept["rejected"], path.stat().st_size, zips)


def run_phase(phase: str, database: str, workdir: Path, args: argparse.Namespace) -> dict:
    print(f"... {phase} ({database})", file=sys.stderr, flush=True)
    if args.small:
        phase_args = argparse.Namespace(**{**vars(args), "phase": phase, "database": database})
        return phase_result(phase_args, workdir)
    command = [sys.executable, "-m", "bench.referrals", "--phase", phase]
    command += ["--database", database, "--workdir", str(workdir)]
    command += ["--postgres-url", args.postgres_url]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.splitlines()
    for line in lines:
        if not line.startswith(RESULT_MARK):
            print(line)
    if done.returncode:
        raise SystemExit(f"phase {phase} on {database} failed (exit {done.returncode})")
    return json.loads(
        next(line for line in lines if line.startswith(RESULT_MARK))[len(RESULT_MARK) :]
    )


def report(referral: ReferralFile, parsed: dict, results: dict[str, dict[str, dict]]) -> None:
    rows = referral.rows
    print()
    versions = [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
    versions += [phases["import"]["server"] for name, phases in results.items() if name != "sqlite"]
    print(
        f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}; "
        + ", ".join(versions)
    )
    loads = ({"parse": parsed["load"]} if parsed else {}) | {
        f"{name} {phase}": result["load"]
        for name, phases in results.items()
        for phase, result in phases.items()
    }
    print(
        "load average (1 min) at the end of each phase: "
        + ", ".join(f"{phase} {load:.1f}" for phase, load in loads.items())
    )
    if max(loads.values()) > (os.cpu_count() or 1):
        print("WARNING: the machine was busy with other work; the timings are inflated by it")
    print(
        f"Referral import, {rows:,} rows ({rows - len(referral.rejected_rows):,} accepted), "
        f"{referral.size / MB:.1f} MB CSV; peak RSS per phase from getrusage in its own process"
    )
    header = (
        f"{'database':<11}{'rows':>8}{'import_s':>10}{'rows/s':>9}{'baseline_s':>12}"
        f"{'rows/s':>9}{'ratio':>7}{'dry_run_s':>11}{'import_MB':>11}{'baseline_MB':>13}"
    )
    print(header)
    for database, phases in results.items():
        imported, baseline = phases.get("import"), phases.get("baseline")
        dry = phases.get("dry-run")
        if not (imported and baseline):
            continue
        print(
            f"{database:<11}{rows:>8}{imported['seconds']:>10.1f}"
            f"{rows / imported['seconds']:>9,.0f}{baseline['seconds']:>12.2f}"
            f"{baseline['inserted'] / baseline['seconds']:>9,.0f}"
            f"{imported['seconds'] / baseline['seconds']:>7.2f}"
            f"{dry['seconds'] if dry else float('nan'):>11.1f}"
            f"{imported['peak_mb']:>11.0f}{baseline['peak_mb']:>13.0f}"
        )
    print(
        "(import_s: import_file + commit; baseline_s: read the CSV, build the rows and bulk-insert "
        "them + commit; ratio = import_s / baseline_s; *_MB: peak RSS of the phase's process)"
    )

    if parsed:
        print()
        print(
            f"Parser alone (no database): {parsed['seconds']:.1f} s, "
            f"{rows / parsed['seconds']:,.0f} rows/s, peak {parsed['peak_mb']:.0f} MB "
            f"(before it: {parsed['start_mb']:.0f} MB)"
        )
        _print_breakdown(parsed["parts"], parsed["seconds"])

    for database, phases in results.items():
        imported, baseline = phases.get("import"), phases.get("baseline")
        if not (imported and baseline):
            continue
        print()
        print(
            f"{database}: where import_file's {imported['seconds']:.1f} s go "
            f"(peak {imported['peak_mb']:.0f} MB, {imported['start_mb']:.0f} MB before it)"
        )
        _print_breakdown(imported["parts"], imported["seconds"])
        print(
            f"  baseline {baseline['seconds']:.2f} s = read + build rows "
            f"{baseline['seconds'] - baseline['insert_seconds']:.2f} s, bulk insert + commit "
            f"{baseline['insert_seconds']:.2f} s"
        )
        print(f"  rows written by the import: {_counts(imported['counts'])}")
        print(
            "  driver calls by statement, table and DBAPI method: calls, rows sent by "
            "executemany, seconds inside the driver's execute"
        )
        for key, (calls, rows_sent, seconds) in sorted(
            imported["statements"].items(), key=lambda item: -item[1][2]
        ):
            sent = f"{rows_sent:,}" if rows_sent else ""
            print(f"    {key:<50}{calls:>9,}{sent:>10}{seconds:>9.2f} s")
        print(f"  rows written by the baseline: {_counts(baseline['counts'])}")

    if {"import", "baseline"} <= set(results.get("postgresql", {})):
        seconds = results["postgresql"]["import"]["seconds"]
        ratio = seconds / results["postgresql"]["baseline"]["seconds"]
        print()
        print(
            f"PostgreSQL targets: import {seconds:.1f} s (target < {TARGET_SECONDS:.0f} s: "
            f"{'met' if seconds < TARGET_SECONDS else 'NOT met'}); ratio {ratio:.1f}x "
            f"(target <= {TARGET_RATIO:.0f}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'})"
        )
    for database, phases in results.items():
        if "profile" in phases:
            print()
            print(
                f"cProfile of the import on {database} ({phases['profile']['seconds']:.1f} s "
                "under the profiler):"
            )
            print(phases["profile"]["profile"])


def _print_breakdown(parts: dict[str, float], total: float) -> None:
    for label, seconds in parts.items():
        print(f"  {label:<66}{seconds:>7.2f} s {100 * seconds / total:>4.0f}%")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {count:,}" for table, count in counts.items())


# --- the child: one phase on a fresh database ----------------------------------------------------


def child(args: argparse.Namespace) -> int:
    result = phase_result(args, Path(args.workdir))
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


def phase_result(args: argparse.Namespace, workdir: Path) -> dict:
    """One phase, run here; what it measured."""
    # The file is read from disk as a stream by every phase (never whole into memory), as the
    # import reads a file kept in the document store.
    data = _File(workdir / FILENAME)
    rejected = json.loads((workdir / "expected.json").read_text())["rejected"]
    if args.phase == "parse":
        result = phase_parse(data, rejected)
    else:
        app, client_id = prepared_app(_fresh_database(args, workdir), workdir)
        with app.app_context():
            client = db.session.get(Client, client_id)
            if args.phase == "baseline":
                result = phase_baseline(client, data, rejected)
            elif args.phase == "dry-run":
                result = phase_dry_run(client, data, rejected)
            elif args.phase == "import":
                result = phase_import(client, data, rejected)
            elif args.phase == "profile":
                result = phase_profile(client, data)
            else:
                raise SystemExit(f"unknown phase {args.phase}")
            db.session.remove()
            db.engine.dispose()
    result["peak_mb"] = _peak_mb()
    result["load"] = os.getloadavg()[0]
    return result


class _File:
    """The generated file: an opener (what cases.referral_file reads) with its path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self):
        return self.path.open("rb")


def _stored(data: _File):
    """The file copied into the document store, as `flask referrals import` does."""
    with data.path.open("rb") as stream:
        return store_referral_file(stream, FILENAME, uploaded_by_id=None)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _fresh_database(args: argparse.Namespace, workdir: Path) -> str:
    if args.database == "sqlite":
        path = workdir / f"{args.phase}.sqlite3"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    _reset_postgres(args.postgres_url)
    return args.postgres_url


def _server(url: str, **options: Any) -> tuple[sa.Engine, str]:
    """An engine on the server's `postgres` database, and our database's name, quoted."""
    target = sa.make_url(database_uri(url))
    engine = sa.create_engine(target.set(database="postgres"), **options)
    return engine, engine.dialect.identifier_preparer.quote(target.database)


def _postgres_problem(url: str) -> str | None:
    engine, _ = _server(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


def _reset_postgres(url: str) -> None:
    engine, name = _server(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()


def _drop_postgres(url: str) -> None:
    engine, name = _server(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


def prepared_app(url: str, workdir: Path) -> tuple[Flask, int]:
    """The app on a migrated, empty database with one client and its fee schedule."""
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "SECRET_KEY": "bench",
            "DOCUMENT_STORE": str(workdir / "documents"),
        }
    )
    with app.app_context():
        _quietly(upgrade)
        client = create_client(db.session, CLIENT_CODE, "Bench Co", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        db.session.commit()
        return app, client.id


def _quietly(function: Callable[[], object]) -> None:
    """Run the migrations without Alembic's INFO lines (its env.py installs a stderr handler)."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            function()
    except BaseException:
        sys.stderr.write(buffer.getvalue())
        raise
    finally:
        for handler in logging.root.handlers[:]:
            if getattr(handler, "stream", None) is buffer:
                logging.root.removeHandler(handler)


def _check(result: referrals.ImportResult, rows: int, rejected: list[int]) -> None:
    got = sorted(rejection["row"] for rejection in result.rejected)
    if got != rejected or result.accepted != rows - len(rejected):
        unexpected = sorted(set(got) ^ set(rejected))[:5]
        raise SystemExit(
            f"the import accepted {result.accepted:,} and rejected {len(got):,} rows; expected "
            f"{rows - len(rejected):,} and {len(rejected):,} (rows differing: {unexpected}; "
            f"first rejections: {result.rejected[:3]})"
        )


def _server_version() -> str:
    if db.engine.dialect.name == "postgresql":
        return "PostgreSQL " + db.session.scalar(sa.text("SHOW server_version")).split()[0]
    return "SQLite " + db.session.scalar(sa.text("SELECT sqlite_version()"))


def _row_counts() -> dict[str, int]:
    tables = (Debtor, Address, Phone, Email, Case, LedgerEntry, audit.AuditEvent)
    return {
        model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in tables
    }


# --- phases --------------------------------------------------------------------------------------


class Stopwatch:
    """Seconds spent inside wrapped functions and iterators, by label. The cost is two
    perf_counter calls per call or item, so it can stay on while the import is timed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, label: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        return timed

    def iterate(self, label: str, items: Iterable) -> Iterator:
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.seconds[label] += time.perf_counter() - start
                return
            self.seconds[label] += time.perf_counter() - start
            yield item


@contextlib.contextmanager
def _patched(module: object, name: str, replacement: object) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


def phase_parse(data: _File, rejected: list[int]) -> dict:
    """The parser alone, with the time inside each field check measured."""
    start_mb = _peak_mb()
    watch = Stopwatch()
    checks = {
        "_email": "email (email_validator.validate_email)",
        "_phone": "phone (phonenumbers parse + is_valid + format)",
        "_postal_code": "postal_code (ZIP/state via zipcodes, cached)",
        "_amounts": "amounts",
        "_due_date": "due_date",
        "_optional_date": "itemization_date, last_payment_date",
    }
    with contextlib.ExitStack() as stack:
        for name, label in checks.items():
            stack.enter_context(
                _patched(referral_file, name, watch.wrap(label, getattr(referral_file, name)))
            )
        started = time.perf_counter()
        results = watch.wrap("encoding + CSV syntax passes (parse() before the first row)", parse)(
            data, FILENAME, as_of=AS_OF, min_age_days=90
        )
        outcome = [r.row for r in watch.iterate("rows", results) if not isinstance(r, ReferralRow)]
        seconds = time.perf_counter() - started
    if outcome != rejected:
        raise SystemExit(f"the parser rejected {len(outcome)} rows, expected {len(rejected)}")
    parts = dict(watch.seconds)
    rows_total = parts.pop("rows")
    in_checks = sum(parts[label] for label in checks.values())
    parts["rest of the row loop (CSV reader, other columns, ReferralRow)"] = rows_total - in_checks
    started = time.perf_counter()
    with data.path.open(encoding="utf-8-sig", newline="") as text:
        for _ in csv.reader(text):
            pass
    parts["(for scale: one bare csv.reader pass over the file)"] = time.perf_counter() - started
    return {"seconds": seconds, "start_mb": start_mb, "parts": parts}


def phase_dry_run(client: Client, data: _File, rejected: list[int]) -> dict:
    start_mb = _peak_mb()
    started = time.perf_counter()
    document, source = _stored(data)
    result = import_file(
        db.session,
        client,
        source,
        FILENAME,
        as_of=AS_OF,
        actor=ACTOR,
        source="cli",
        dry_run=True,
        document=document,
    )
    db.session.commit()
    seconds = time.perf_counter() - started
    _check(result, _data_rows(data), rejected)
    return {"seconds": seconds, "start_mb": start_mb}


def phase_import(client: Client, data: _File, rejected: list[int]) -> dict:
    """Copy into the document store + import_file + commit (`flask referrals import` without
    --json), with the time inside its main steps measured on the way."""
    start_mb = _peak_mb()
    watch = Stopwatch()
    labels = {
        "store": "copy the file into the document store (1 MiB chunks, SHA-256)",
        "open": "parse_counted(): encoding, delimiter, CSV syntax pass (counts lines)",
        "rows": "parse rows: CSV reader + field checks (a thread; overlaps the rest)",
        "cases": "insert: _open_cases (all tables)",
        "known": "  of which the same-debtor lookup (_same_debtors)",
        "contacts": "  of which addresses, phones, emails (_insert_contact_points)",
        "references": "  of which next_references",
    }

    def timed_parse(*args, **kwargs):
        lines, results = watch.wrap(labels["open"], referral_file.parse_counted)(*args, **kwargs)
        return lines, watch.iterate(labels["rows"], results)

    patches = {
        "parse_counted": timed_parse,
        "_open_cases": watch.wrap(labels["cases"], referrals._open_cases),
        "_same_debtors": watch.wrap(labels["known"], referrals._same_debtors),
        "_insert_contact_points": watch.wrap(labels["contacts"], referrals._insert_contact_points),
        "next_references": watch.wrap(labels["references"], referrals.next_references),
    }
    statements = _StatementLog()
    with contextlib.ExitStack() as stack:
        for name, replacement in patches.items():
            stack.enter_context(_patched(referrals, name, replacement))
        stack.enter_context(statements.listening(db.engine))
        started = time.perf_counter()
        document, source = watch.wrap(labels["store"], _stored)(data)
        result = import_file(
            db.session,
            client,
            source,
            FILENAME,
            as_of=AS_OF,
            actor=ACTOR,
            source="cli",
            document=document,
            keep_references=False,
        )
        committing = time.perf_counter()
        db.session.commit()
        done = time.perf_counter()
    seconds = done - started
    _check(result, _data_rows(data), rejected)
    parts = {label: watch.seconds.get(label, 0.0) for label in labels.values()}
    parts["commit"] = done - committing
    top_level = [labels[key] for key in ("store", "open", "cases")] + ["commit"]
    parts["other (waiting for checked rows, open-case lookups, batch row, audit)"] = seconds - sum(
        parts[label] for label in top_level
    )
    return {
        "seconds": seconds,
        "start_mb": start_mb,
        "parts": parts,
        "counts": _row_counts(),
        "server": _server_version(),
        "statements": dict(statements.calls),
    }


class _StatementLog:
    """Calls to the database driver by statement, table and DBAPI method, with the time spent in
    them (the driver's execute: the round trip and the server's work, not fetching rows)."""

    _STATEMENT = re.compile(r"\s*(INSERT INTO|SELECT\s.*?\sFROM|UPDATE|DELETE FROM)\s+(\w+)", re.S)
    _METHODS = {
        ExecuteStyle.EXECUTE: "execute",
        ExecuteStyle.EXECUTEMANY: "executemany",
        ExecuteStyle.INSERTMANYVALUES: "multi-row VALUES",
    }

    def __init__(self) -> None:
        self.calls: dict[str, list] = defaultdict(lambda: [0, 0, 0.0])  # calls, rows, seconds
        self._started: dict[int, tuple[str, float]] = {}

    def before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        match = self._STATEMENT.match(statement)
        if not match:
            return
        verb = match.group(1).split()[0]
        style = context.execute_style if context is not None else ExecuteStyle.EXECUTE
        key = f"{verb} {match.group(2)} ({self._METHODS[style]})"
        entry = self.calls[key]
        entry[0] += 1
        entry[1] += len(parameters) if style is ExecuteStyle.EXECUTEMANY else 0
        self._started[id(cursor)] = key, time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        started = self._started.pop(id(cursor), None)
        if started:
            self.calls[started[0]][2] += time.perf_counter() - started[1]

    @contextlib.contextmanager
    def listening(self, engine: sa.Engine) -> Iterator[None]:
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)
        try:
            yield
        finally:
            event.remove(engine, "before_cursor_execute", self.before)
            event.remove(engine, "after_cursor_execute", self.after)


def phase_profile(client: Client, data: _File) -> dict:
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    document, source = _stored(data)
    import_file(
        db.session,
        client,
        source,
        FILENAME,
        as_of=AS_OF,
        actor=ACTOR,
        source="cli",
        document=document,
        keep_references=False,
    )
    db.session.commit()
    profiler.disable()
    seconds = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(25)
    text = out.getvalue()
    for prefix in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"], str(ROOT)):
        text = text.replace(prefix + "/", "")
    return {"seconds": seconds, "profile": text}


def _data_rows(data: _File) -> int:
    # The generated file has no line breaks inside values.
    with data.path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b"")) - 1


# --- the baseline: the same rows, no checks ------------------------------------------------------


def phase_baseline(client: Client, data: _File, rejected: list[int]) -> dict:
    """Read the CSV plainly and bulk-insert the accepted rows into the import's tables."""
    start_mb = _peak_mb()
    skip = set(rejected)
    engine = db.engine
    postgres = engine.dialect.name == "postgresql"
    db.session.remove()
    started = time.perf_counter()
    insert_seconds = 0.0
    inserted = 0
    with contextlib.ExitStack() as stack, engine.begin() as conn:
        now = dt.datetime.now(dt.UTC)
        batch_id = conn.execute(
            sa.insert(ReferralBatch).returning(ReferralBatch.id),
            {
                "client_id": client.id,
                "source": "cli",
                "filename": FILENAME,
                "file_sha256": "",
                "content": None,
                "mapping": {},
                "as_of": AS_OF,
                "status": "imported",
                "total_rows": _data_rows(data),
                "processed_rows": _data_rows(data),
                "accepted_count": _data_rows(data) - len(skip),
                "rejected": [],
                "created_at": now,
            },
        ).scalar_one()
        ids = {
            model.__table__: conn.scalar(sa.select(sa.func.coalesce(sa.func.max(model.id), 0)))
            for model in BASELINE_MODELS
        }
        builder = _BaselineRows(client.id, batch_id, now, ids, postgres)
        write = _copy if postgres else _executemany
        text = stack.enter_context(data.path.open(encoding="utf-8-sig", newline=""))
        reader = csv.reader(text)
        header = next(reader)
        records = (
            (row, dict(zip(header, cells, strict=True)))
            for row, cells in enumerate(reader, start=2)
            if row not in skip
        )
        for chunk in _chunks(records, BASELINE_CHUNK_ROWS):
            tables = builder.build(chunk)
            writing = time.perf_counter()
            for table, rows in tables.items():
                write(conn, table, rows)
            insert_seconds += time.perf_counter() - writing
            inserted += len(chunk)
        writing = time.perf_counter()
        conn.execute(sa.insert(ReferenceCounter), {"prefix": builder.prefix, "last": inserted})
        if postgres:
            for table in ids:
                conn.execute(
                    sa.select(
                        sa.func.setval(
                            sa.func.pg_get_serial_sequence(table.name, "id"),
                            sa.select(sa.func.max(table.c.id)).scalar_subquery(),
                        )
                    )
                )
    insert_seconds += time.perf_counter() - writing  # the commit and sequence updates
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "insert_seconds": insert_seconds,
        "inserted": inserted,
        "start_mb": start_mb,
        "counts": _row_counts(),
    }


BASELINE_MODELS = (Debtor, Address, Phone, Email, Case, LedgerEntry, audit.AuditEvent)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _BaselineRows:
    """The rows import_file writes for each accepted referral, built with no checks: explicit
    ids (the tables are empty but for the client's audit events), values taken as written."""

    def __init__(
        self, client_id: int, batch_id: int, now: dt.datetime, ids: dict, postgres: bool
    ) -> None:
        self.client_id, self.batch_id, self.ids = client_id, batch_id, ids
        self.prefix = AS_OF.strftime("%y%m")
        self.reference = 0
        # COPY takes Python dates and aware datetimes; SQLite gets the text SQLAlchemy stores.
        self.now = now if postgres else now.replace(tzinfo=None).isoformat(" ")
        self.day: Callable[[dt.date | None], object] = (
            (lambda day: day) if postgres else (lambda day: day and day.isoformat())
        )

    def _next(self, model: type) -> int:
        table = model.__table__
        self.ids[table] += 1
        return self.ids[table]

    def build(self, records: list[tuple[int, dict[str, str]]]) -> dict[sa.Table, list[dict]]:
        tables: dict[sa.Table, list[dict]] = {model.__table__: [] for model in BASELINE_MODELS}
        debtors, addresses, phones, emails, cases, ledger, events = tables.values()
        day, now = self.day, self.now
        for row, r in records:
            kind = r["debtor_type"] or "consumer"
            name = (
                r["company_name"] if kind == "commercial" else f"{r['first_name']} {r['last_name']}"
            )
            debtor_id = self._next(Debtor)
            debtors.append(
                {
                    "id": debtor_id,
                    "kind": kind,
                    "first_name": r["first_name"],
                    "last_name": r["last_name"],
                    "company_name": r["company_name"],
                    "match_key": match_key(kind, name, r["postal_code"]),
                    "language": "en",
                    "situation": "unknown",
                    "inconvenient_times": "[]",
                    "created_at": now,
                }
            )
            addresses.append(
                {
                    "id": self._next(Address),
                    "debtor_id": debtor_id,
                    "line1": r["address_line1"],
                    "line2": r["address_line2"],
                    "city": r["city"],
                    "state": r["state"],
                    "postal_code": r["postal_code"],
                }
            )
            phones.append(
                {
                    "id": self._next(Phone),
                    "debtor_id": debtor_id,
                    "number": "+1" + "".join(c for c in r["phone"] if c.isdigit()),
                    "type": "other",
                    "text_consent": False,
                }
            )
            emails.append(
                {
                    "id": self._next(Email),
                    "debtor_id": debtor_id,
                    "address": r["email"],
                    "consent": True,
                }
            )
            self.reference += 1
            reference = f"RC-{self.prefix}-{self.reference:05d}"
            due = _plain_date(r["due_date"])
            itemized = _plain_date(r["itemization_date"]) or due
            case_id = self._next(Case)
            cases.append(
                {
                    "id": case_id,
                    "reference": reference,
                    "client_id": self.client_id,
                    "debtor_id": debtor_id,
                    "batch_id": self.batch_id,
                    "batch_row": row,
                    "account_number": r["account_number"],
                    "open_account_number": r["account_number"],
                    "status": "new",
                    "referred_on": day(AS_OF),
                    "due_date": day(due),
                    "itemization_date": day(itemized),
                    "days_past_due_at_referral": (AS_OF - due).days,
                    "last_payment_date": day(_plain_date(r["last_payment_date"])),
                    "invoice_number": r["invoice_number"] or None,
                    "service_description": r["service_description"] or None,
                    "in_legal": False,
                    "status_changed_at": now,
                    "created_at": now,
                }
            )
            for component in ("principal", "interest", "fees"):
                amount = _plain_cents(r[component])
                if amount:
                    ledger.append(
                        {
                            "id": self._next(LedgerEntry),
                            "case_id": case_id,
                            "kind": "placement",
                            "component": component,
                            "amount_cents": amount,
                            "fee_bps": 0,
                            "fee_cents": 0,
                            "external_id": f"placement:{reference}:{component}",
                            "received_at": day(itemized),
                            "created_at": now,
                        }
                    )
            events.append(
                {
                    "id": self._next(audit.AuditEvent),
                    "at": now,
                    "actor_user_id": None,
                    "actor_label": ACTOR.label,
                    "entity_type": "case",
                    "entity_id": str(case_id),
                    "case_id": case_id,
                    "action": "case.opened",
                    "detail": json.dumps(
                        {
                            "reference": reference,
                            "batch": self.batch_id,
                            "row": row,
                            "account_number": r["account_number"],
                        }
                    ),
                }
            )
        return tables


def _plain_date(text: str) -> dt.date | None:
    if not text:
        return None
    if "/" in text:
        month, day, year = text.split("/")
        return dt.date(int(year), int(month), int(day))
    return dt.date.fromisoformat(text)


def _plain_cents(text: str) -> int:
    return int(Decimal(text.replace("$", "").replace(",", "")) * 100) if text else 0


def _copy(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


_NAMED_SQLITE = sqlite.dialect(paramstyle="named")  # executemany with dicts


def _executemany(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    if not rows:
        return
    # The compiled INSERT names every column with a default in the model, as the ORM writes
    # them (a column added later, such as debtors.monthly_statements, too): the rows get them
    # here, a callable's (cases.stamp's) made for each row. (COPY leaves them to the server.)
    defaults = [
        column.default
        for column in table.columns
        if column.key not in rows[0] and column.default is not None
        if column.default.is_scalar or column.default.is_callable
    ]
    if defaults:
        rows = [
            row
            | {
                default.column.key: default.arg(None) if default.is_callable else default.arg
                for default in defaults
            }
            for row in rows
        ]
    statement = sa.insert(table).compile(dialect=_NAMED_SQLITE, column_keys=list(rows[0]))
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(str(statement), rows)
    finally:
        cursor.close()


if __name__ == "__main__":
    sys.exit(main())
