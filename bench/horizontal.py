"""Benchmark: the debtor portal's cached balance page served by one app process, and by two
app processes on two ports (two app servers), against the same PostgreSQL and Redis.

Fills a database as bench/portal.py does (its `fill`), then starts two gunicorn servers (its
`start_gunicorn`) of one worker process each (4 threads), on two ports, with the same
DATABASE_URL, REDIS_URL and SECRET_KEY. The debtor signs in on the first; the same cookie is
used on both (sessions are records in PostgreSQL, the page cache is in Redis). Each round loads
the accounts page (`/portal/`) with the same clients against the first server alone ("one"),
then spread evenly over both ("two"), alternating which goes first; the bare endpoint of
bench/portal_app.py is loaded the same way, as the machine's ceiling. The load comes from
`--loaders` processes (a single Python process of threads would be the bottleneck), each
running bench/portal.py's load loop (`keep_alive_clients`), their threads taking the servers in
turn.

Prints requests/s for each, the ratio two/one (information: on 2 cores the load, the
database and Redis share the cores with the servers), and figures the machine's load moves
less: requests and errors, CPU time per request of the app processes and of the database's
backends (from /proc), the requests each server answered, and the pages rendered into Redis
(one per page, shared by both servers). `--control` adds a third case, one gunicorn server of
two worker processes on one port: two processes without two servers, to tell what is the
second process's and what the second server's.

    .venv/bin/python -m bench.horizontal [--clients 8] [--loaders 2] [--seconds 3] [--rounds 4]
        [--redis-url redis://127.0.0.1:6379/8] [--control] [--reuse] [--chart docs/horizontal.svg]
        [--small]

`--small` (20 debtors, two clients, one loader, one short round; seconds) is the test suite's
run (tests/bench/): any error there is a failure.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from bench.common import add_database_arguments, bench_database, drop_database
from bench.portal import (
    fill,
    free_port,
    keep_alive_clients,
    percentiles_ms,
    sign_in,
    start_gunicorn,
)

DATABASE = "recourse_bench_horizontal"
DEFAULT_REDIS = "redis://127.0.0.1:6379/8"
PAGE = "/portal/"
BARE = "/_bench/bare"
PAGE_KEYS = "recourse:portal-page:*"


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (gunicorn's master and workers),
    from /proc: the app's own work, whatever else the machine runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def load(
    pool, ports: list[int], path: str, cookie: str, clients: int, loaders: int, seconds: float
) -> dict:
    """`clients` clients in `loaders` processes, spread evenly over `ports`, for `seconds`."""
    start = time.time() + 0.5  # every loader begins together
    share = [clients // loaders + (1 if n < clients % loaders else 0) for n in range(loaders)]
    firsts = [sum(share[:n]) for n in range(loaders)]
    futures = [
        pool.submit(keep_alive_clients, ports, path, cookie, share[n], seconds, firsts[n], start)
        for n in range(loaders)
        if share[n]
    ]
    results = [f.result() for f in futures]
    counts = {port: sum(r["counts"][port] for r in results) for port in ports}
    requests = sum(counts.values())
    return {
        # Each loader's own rate over its own window: together, the rate they kept up.
        "rps": sum(sum(r["counts"].values()) / r["elapsed"] for r in results),
        "requests": requests,
        "per_server": counts,
        "errors": sum(r["errors"] for r in results),
        **percentiles_ms([x for r in results for x in r["latencies"]]),
    }


def first_reference(url: str) -> str:
    """The reference `fill` returned, in a database it filled before (`--reuse`)."""
    import sqlalchemy as sa

    from shell.settings import database_uri

    engine = sa.create_engine(database_uri(url))
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT reference FROM cases ORDER BY id LIMIT 1"))
    finally:
        engine.dispose()


class DatabaseCPU:
    """CPU time of the PostgreSQL backends serving the benchmark's database (from /proc; the
    server runs on this machine): the database's share of each request, whatever else runs."""

    def __init__(self, url: str):
        import sqlalchemy as sa

        from shell.settings import database_uri

        self.engine = sa.create_engine(database_uri(url))
        self.connection = self.engine.connect()
        self.sql = sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )

    def seconds(self) -> float:
        pids = self.connection.scalars(self.sql).all()
        self.connection.rollback()
        ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


def page_keys(redis_url: str) -> set[bytes]:
    """The rendered portal pages in Redis (none without Redis)."""
    if not redis_url:
        return set()
    from redis import Redis

    redis = Redis.from_url(redis_url)
    try:
        return set(redis.scan_iter(PAGE_KEYS))
    finally:
        redis.close()


def forget(redis_url: str, keys: set[bytes]) -> None:
    """This run's rendered pages out of Redis (they would expire within the hour anyway)."""
    if not (redis_url and keys):
        return
    from redis import Redis

    redis = Redis.from_url(redis_url)
    try:
        redis.delete(*keys)
    finally:
        redis.close()


SMALL = {"debtors": 20, "clients": 2, "loaders": 1, "seconds": 0.3, "rounds": 1}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--debtors", type=int, help="1,000")
    parser.add_argument("--clients", type=int, help="8 keep-alive clients in all")
    parser.add_argument("--loaders", type=int, help="2 load processes")
    parser.add_argument("--seconds", type=float, help="3 per measurement")
    parser.add_argument("--rounds", type=int, help="4")
    parser.add_argument("--threads", type=int, default=4, help="per app process (4)")
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS,
        help="the page cache and sign-in counters ('' for none: each process caches its own)",
    )
    parser.add_argument("--chart", default=None, help="draw the medians to this SVG file")
    parser.add_argument(
        "--control",
        action="store_true",
        help="also one server of two worker processes on one port (two processes, one server)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="serve the database an earlier run filled (no fill)"
    )
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    full = {"debtors": 1_000, "clients": 8, "loaders": 2, "seconds": 3.0, "rounds": 4}
    for name, value in (SMALL if args.small else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    url = bench_database(args)
    if args.reuse:
        reference = first_reference(url)
    else:
        began = time.perf_counter()
        reference = fill(url, args.debtors)
        print(f"filled {args.debtors:,} debtors in {time.perf_counter() - began:.1f} s")
    before = page_keys(args.redis_url)
    servers: list[subprocess.Popen] = []
    database = DatabaseCPU(url)
    load_at_start = os.getloadavg()
    pool = ProcessPoolExecutor(max_workers=args.loaders, mp_context=get_context("spawn"))
    first, second, third = free_port(), free_port(), free_port()
    # name: (what it is, the ports the load is spread over)
    configs = {
        "one": ("one app process", [first]),
        "two": ("two app servers", [first, second]),
    }
    if args.control:
        configs["pair"] = ("one server, 2 workers", [third])
    rounds: list[dict] = []
    try:
        servers = [
            start_gunicorn(url, port, 1, args.threads, args.redis_url) for port in (first, second)
        ]
        if args.control:
            servers.append(start_gunicorn(url, third, 2, args.threads, args.redis_url))
        cookie = sign_in(first, reference)  # on the first server; used on every server
        for _, ports in configs.values():  # warm up: connections, the page rendered and cached
            for path in (BARE, PAGE):
                load(pool, ports, path, cookie, args.clients, args.loaders, min(1.0, args.seconds))
        for n in range(args.rounds):
            names = list(configs)
            order = names[n % len(names) :] + names[: n % len(names)]  # each goes first in turn
            measured: dict = {}
            for name in order:
                for what, path in (("page", PAGE), ("bare", BARE)):
                    cpu = sum(tree_cpu_seconds(s.pid) for s in servers)
                    db_cpu = database.seconds()
                    result = load(
                        pool,
                        configs[name][1],
                        path,
                        cookie,
                        args.clients,
                        args.loaders,
                        args.seconds,
                    )
                    cpu = sum(tree_cpu_seconds(s.pid) for s in servers) - cpu
                    db_cpu = database.seconds() - db_cpu
                    result["cpu_us"] = 1e6 * cpu / max(1, result["requests"])
                    result["db_cpu_us"] = 1e6 * db_cpu / max(1, result["requests"])
                    measured[(name, what)] = result
            rounds.append(measured)
            print(
                f"round {n + 1}: "
                + "; ".join(
                    f"{name} page {measured[name, 'page']['rps']:.0f}"
                    f" bare {measured[name, 'bare']['rps']:.0f} req/s"
                    for name in configs
                )
                + f"; ratio two/one page {measured['two', 'page']['rps'] / max(measured['one', 'page']['rps'], 1e-9):.2f}"
                f" bare {measured['two', 'bare']['rps'] / max(measured['one', 'bare']['rps'], 1e-9):.2f}"
            )
        created = page_keys(args.redis_url) - before
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)
        pool.shutdown()
        database.close()
    load_at_end = os.getloadavg()

    def median(name: str, what: str, figure: str) -> float:
        return statistics.median(r[name, what][figure] for r in rounds)

    def ratio(name: str, what: str) -> float:
        """Of `name` to one app process, round by round; their median."""
        return statistics.median(
            r[name, what]["rps"] / max(r["one", what]["rps"], 1e-9) for r in rounds
        )

    errors = sum(m["errors"] for r in rounds for m in r.values())
    split = [sum(r["two", "page"]["per_server"][p] for r in rounds) for p in configs["two"][1]]
    print(
        f"\n{args.clients} clients in {args.loaders} load process(es); each app process is a"
        f" gunicorn worker with {args.threads} threads; {args.rounds} rounds of"
        f" {args.seconds:g} s (medians; CPU per request from /proc):"
    )
    print(
        f"  {'':<22} {'':<6} {'req/s':>7} {'p50 ms':>7} {'app CPU us':>10} {'db CPU us':>9}"
        f" {'ratio to one':>12}"
    )
    for what in ("page", "bare"):
        for name, (label, _) in configs.items():
            print(
                f"  {label:<22} {what:<6} {median(name, what, 'rps'):7.0f}"
                f" {median(name, what, 'p50_ms'):7.1f} {median(name, what, 'cpu_us'):10.0f}"
                f" {median(name, what, 'db_cpu_us'):9.0f} {ratio(name, what):12.2f}"
            )
    print(f"  page requests on two: {split[0]:,} on the first server, {split[1]:,} on the second")
    if args.redis_url:
        print(f"  pages rendered into Redis by the run: {len(created)} (one per page, shared)")
    print(f"  errors {errors}   (the ratio is information, not a gate)")
    print(
        "  load average (1, 5, 15 min) at the start "
        + ", ".join(f"{x:.1f}" for x in load_at_start)
        + "; at the end "
        + ", ".join(f"{x:.1f}" for x in load_at_end)
    )
    if args.chart:
        from bench.chart import write_bars

        write_bars(
            args.chart,
            "Portal accounts page: one app process vs two (same run, medians)",
            "req/s",
            [
                (f"{what}: {label}", median(name, what, "rps"))
                for what in ("page", "bare")
                for name, (label, _) in configs.items()
            ],
        )
    forget(args.redis_url, created)
    if args.small:
        drop_database(args.database, args.postgres_server)
    return {
        "errors": errors,
        "requests": {
            f"{name} {what}": sum(r[name, what]["requests"] for r in rounds)
            for name in configs
            for what in ("page", "bare")
        },
        "per_server": split,
        "ratio_page": ratio("two", "page"),
        "ratio_bare": ratio("two", "bare"),
        "page_entries": len(created) if args.redis_url else None,
        "cpu_us": {
            f"{name} {what}": (median(name, what, "cpu_us"), median(name, what, "db_cpu_us"))
            for name in configs
            for what in ("page", "bare")
        },
    }


if __name__ == "__main__":
    main()
