"""Benchmark: the debtor portal's cached balance page served by one app process, and by two
app processes on two ports (two app servers), against the same PostgreSQL and Redis.

Fills a database as bench/portal.py does (its `fill`), then starts two gunicorn servers of one
worker process each (4 threads), on two ports, with the same DATABASE_URL, REDIS_URL and
SECRET_KEY. The debtor signs in on the first; the same cookie is used on both (sessions are
records in PostgreSQL, the page cache is in Redis). Each round loads the accounts page
(`/portal/`) with the same clients against the first server alone ("one"), then spread evenly
over both ("two"), alternating which goes first; the bare endpoint of bench/portal_app.py is
loaded the same way, as the machine's ceiling. The load comes from `--loaders` processes (a
single Python process of threads would be the bottleneck), their threads taking the servers
in turn.

Prints requests/s for each, the ratio two/one (information: on 2 cores the load, the
database and Redis share the cores with the servers), and figures the machine's load does not
move: requests and errors, the app processes' CPU time per request (from /proc), the requests
each server answered, and the rendered pages in Redis (one entry per page, shared by both).

    .venv/bin/python -m bench.horizontal [--clients 8] [--loaders 2] [--seconds 3] [--rounds 4]
        [--redis-url redis://127.0.0.1:6379/8] [--chart docs/horizontal.svg] [--small]

`--small` (20 debtors, two clients, one loader, one short round; seconds) is the test suite's
run (tests/bench/): any error there is a failure.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from bench.common import add_database_arguments, drop_database, reset_database
from bench.portal import SECRET, fill, free_port, sign_in

DATABASE = "recourse_bench_horizontal"
DEFAULT_REDIS = "redis://127.0.0.1:6379/8"
PAGE = "/portal/"
BARE = "/_bench/bare"
PAGE_KEYS = "recourse:portal-page:*"


def start_server(url: str, redis_url: str, port: int, threads: int) -> subprocess.Popen:
    """One app server: gunicorn with one worker process, as bench/portal.py serves the app."""
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=redis_url, SECRET_KEY=SECRET)
    env["SESSION_COOKIE_SECURE"] = "false"
    env.pop("FLASK_DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--threads", str(threads), "--worker-class", "gthread"]
        + ["--log-level", "warning", "bench.portal_app:app"],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn on port {port} exited ({process.returncode})")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", BARE)
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    process.kill()
    raise RuntimeError(f"gunicorn on port {port} did not start")


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


def _loader(
    ports: list[int], path: str, cookie: str, threads: int, first: int, start: float, seconds: float
) -> dict:
    """One load process: `threads` keep-alive clients, client k on ports[(first + k) % n], from
    wall-clock `start` (or now, if this process came late) for `seconds`. Counts per port."""
    expected = b"Balance" if path.startswith("/portal") else b"ok"
    counts = {port: 0 for port in ports}
    errors = [0]
    latencies: list[float] = []
    lock = threading.Lock()

    def run(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done, bad, mine, mine_cookie = 0, 0, [], cookie
        while time.time() < end:
            began = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Cookie": mine_cookie})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200 or expected not in body:
                    bad += 1
                # As a browser: the session's last use, written again once a minute.
                renewed = response.getheader("Set-Cookie") or ""
                if renewed.startswith("session="):
                    mine_cookie = renewed.split(";", 1)[0]
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            done += 1
            mine.append(time.perf_counter() - began)
        conn.close()
        with lock:
            counts[port] += done
            errors[0] += bad
            latencies.extend(mine)

    workers = [
        threading.Thread(target=run, args=(ports[(first + k) % len(ports)],))
        for k in range(threads)
    ]
    time.sleep(max(0.0, start - time.time()))
    opened = time.time()
    end = opened + seconds
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.time() - opened
    return {"counts": counts, "errors": errors[0], "latencies": latencies, "elapsed": elapsed}


def load(
    pool, ports: list[int], path: str, cookie: str, clients: int, loaders: int, seconds: float
) -> dict:
    """`clients` clients in `loaders` processes, spread evenly over `ports`, for `seconds`."""
    start = time.time() + 0.5  # every loader begins together
    share = [clients // loaders + (1 if n < clients % loaders else 0) for n in range(loaders)]
    firsts = [sum(share[:n]) for n in range(loaders)]
    futures = [
        pool.submit(_loader, ports, path, cookie, share[n], firsts[n], start, seconds)
        for n in range(loaders)
        if share[n]
    ]
    results = [f.result() for f in futures]
    counts = {port: sum(r["counts"][port] for r in results) for port in ports}
    latencies = sorted(x for r in results for x in r["latencies"])
    requests = sum(counts.values())
    return {
        # Each loader's own rate over its own window: together, the rate they kept up.
        "rps": sum(sum(r["counts"].values()) / r["elapsed"] for r in results),
        "requests": requests,
        "per_server": counts,
        "errors": sum(r["errors"] for r in results),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0,
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
        "--reuse", action="store_true", help="serve the database an earlier run filled (no fill)"
    )
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    full = {"debtors": 1_000, "clients": 8, "loaders": 2, "seconds": 3.0, "rounds": 4}
    for name, value in (SMALL if args.small else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    if args.reuse:
        url = args.postgres_server.rsplit("/", 1)[0] + "/" + args.database
        reference = first_reference(url)
    else:
        url = reset_database(args.database, args.postgres_server)
        began = time.perf_counter()
        reference = fill(url, args.debtors)
        print(f"filled {args.debtors:,} debtors in {time.perf_counter() - began:.1f} s")
    before = page_keys(args.redis_url)
    first, second = free_port(), free_port()
    servers: list[subprocess.Popen] = []
    pool = ProcessPoolExecutor(max_workers=args.loaders, mp_context=get_context("spawn"))
    configs = {"one": [first], "two": [first, second]}
    rounds: list[dict] = []
    try:
        servers = [start_server(url, args.redis_url, port, args.threads) for port in configs["two"]]
        cookie = sign_in(first, reference)  # on the first server; used on both
        for ports in configs.values():  # warm up: connections, the page rendered and cached
            for path in (BARE, PAGE):
                load(pool, ports, path, cookie, args.clients, args.loaders, min(1.0, args.seconds))
        for n in range(args.rounds):
            order = list(configs) if n % 2 == 0 else list(reversed(configs))
            measured: dict = {}
            for name in order:
                for what, path in (("page", PAGE), ("bare", BARE)):
                    cpu = sum(tree_cpu_seconds(s.pid) for s in servers)
                    result = load(
                        pool, configs[name], path, cookie, args.clients, args.loaders, args.seconds
                    )
                    cpu = sum(tree_cpu_seconds(s.pid) for s in servers) - cpu
                    result["cpu_us"] = 1e6 * cpu / max(1, result["requests"])
                    measured[(name, what)] = result
            rounds.append(measured)
            print(
                f"round {n + 1}: page {measured['one', 'page']['rps']:.0f} req/s on one process,"
                f" {measured['two', 'page']['rps']:.0f} on two"
                f" (ratio {measured['two', 'page']['rps'] / measured['one', 'page']['rps']:.2f});"
                f" bare {measured['one', 'bare']['rps']:.0f} / {measured['two', 'bare']['rps']:.0f}"
                f" (ratio {measured['two', 'bare']['rps'] / measured['one', 'bare']['rps']:.2f})"
            )
        created = page_keys(args.redis_url) - before
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)
        pool.shutdown()

    def median(name: str, what: str, figure: str) -> float:
        return statistics.median(r[name, what][figure] for r in rounds)

    def ratio(what: str) -> float:
        return statistics.median(r["two", what]["rps"] / r["one", what]["rps"] for r in rounds)

    errors = sum(m["errors"] for r in rounds for m in r.values())
    split = [sum(r["two", "page"]["per_server"][p] for r in rounds) for p in configs["two"]]
    print(
        f"\n{args.clients} clients in {args.loaders} load process(es); each app process is"
        f" gunicorn with 1 worker x {args.threads} threads; {args.rounds} rounds of"
        f" {args.seconds:g} s (medians):"
    )
    for what, label in (("page", "accounts page"), ("bare", "bare endpoint")):
        print(
            f"  {label:<14} one process {median('one', what, 'rps'):7.0f} req/s"
            f" (p50 {median('one', what, 'p50_ms'):.1f} ms,"
            f" {median('one', what, 'cpu_us'):.0f} us app CPU/request);"
            f" two {median('two', what, 'rps'):7.0f} req/s"
            f" (p50 {median('two', what, 'p50_ms'):.1f} ms,"
            f" {median('two', what, 'cpu_us'):.0f} us);  ratio two/one {ratio(what):.2f}"
        )
    print(f"  page requests on two: {split[0]:,} on the first server, {split[1]:,} on the second")
    if args.redis_url:
        print(f"  pages rendered into Redis by the run: {len(created)} (one per page, shared)")
    print(f"  errors {errors}   (the ratio is information, not a gate)")
    if args.chart:
        from bench.chart import write_bars

        write_bars(
            args.chart,
            "Portal accounts page: one app process vs two (same run, medians)",
            "req/s",
            [
                ("page, one app process", median("one", "page", "rps")),
                ("page, two app processes", median("two", "page", "rps")),
                ("bare endpoint, one", median("one", "bare", "rps")),
                ("bare endpoint, two", median("two", "bare", "rps")),
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
        "ratio_page": ratio("page"),
        "ratio_bare": ratio("bare"),
        "page_entries": len(created) if args.redis_url else None,
    }


if __name__ == "__main__":
    main()
