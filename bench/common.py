"""What every benchmark needs: a fresh PostgreSQL database of its own, COPY, timed pages, and the
machine's CPU time."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator

import sqlalchemy as sa

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def reset_database(name: str, server_url: str = PG_SERVER) -> str:
    """Drop and create database `name` on the PostgreSQL server of `server_url` (the local
    one); its URL."""
    from shell.settings import database_uri

    server = sa.create_engine(database_uri(server_url), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str, server_url: str = PG_SERVER) -> None:
    """Drop database `name` (a small run's: the test suite leaves nothing behind)."""
    from shell.settings import database_uri

    server = sa.create_engine(database_uri(server_url), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def bench_database(args) -> str:
    """The URL of the benchmark's database: the one an earlier `--keep` run filled, with
    `--reuse`; otherwise made afresh (`--database` on `--postgres-server`)."""
    if getattr(args, "reuse", False):
        return args.postgres_server.rsplit("/", 1)[0] + "/" + args.database
    return reset_database(args.database, args.postgres_server)


def bench_app(url: str, *, csrf: bool = False):
    """The app the page benchmarks time through the Flask test client, migrated to the newest
    schema: jobs in-process, no Redis, plain HTTP, and staff sign in with a password alone (the
    pages are measured, not the sign-in); CSRF checked only when `csrf`."""
    from flask_migrate import upgrade

    from agency import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "SECRET_KEY": "bench",
            "SESSION_COOKIE_SECURE": False,
            "WTF_CSRF_ENABLED": csrf,
            "MFA_REQUIRED": False,
        }
    )
    with app.app_context():
        upgrade()
    return app


def add_database_arguments(parser, database: str) -> None:
    """--small (the test suite's run: seconds), and where its database is made."""
    parser.add_argument(
        "--small", action="store_true", help="a run of seconds (the test suite's: tests/bench/)"
    )
    parser.add_argument("--database", default=database, help="dropped and created (%(default)s)")
    parser.add_argument(
        "--postgres-server", default=PG_SERVER, help="any database URL on the server to use"
    )


def copy(conn, table: str, columns: list[str], rows, /, **same) -> None:
    """COPY rows into a table through psycopg 3 (the fastest way in): each row a tuple of the
    `columns`' values; each keyword a further column with that value in every row."""
    if same:
        tail = tuple(same.values())
        columns, rows = [*columns, *same], (row + tail for row in rows)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


@contextlib.contextmanager
def statements_run(engine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends inside the block, in order, as sent (the benchmarks'
    and the tests' one way of counting them)."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def statements_of(app, client, path: str) -> list[str]:
    """The SQL statements one GET of `path` sends (it must answer 200)."""
    from shell.extensions import db

    with app.app_context():
        engine = db.engine
    with statements_run(engine) as seen:
        assert client.get(path).status_code == 200
    return seen


def timed(client, path: str, n: int) -> list[float]:
    """Milliseconds of each of n GETs of `path` through a Flask test client (each must answer
    200)."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) > 1 else samples[0]


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all processes (Linux /proc/stat):
    the difference over a run counts the work of every process in it, ours and the servers'."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
