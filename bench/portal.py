"""Benchmark: the debtor's signed-in balance page under gunicorn on PostgreSQL.

Fills a database with 1,000 debtors (one with three cases, twenty payments each), serves the
app with gunicorn, signs in as that debtor, then loads the balance pages (the accounts page
with each case's balance, and a case page with balance, itemisation and payment history) with
a fixed number of concurrent keep-alive clients, alternating with the same load on a bare
endpoint of the same app (bench/portal_app.py) as the baseline. Prints requests/s, p50/p95
latency and errors for each, and the ratio. Target: at least 50% of the bare endpoint's
requests/s, with zero errors.

    .venv/bin/python -m bench.portal [--clients 8] [--seconds 5] [--rounds 3] [--workers 2]
                                     [--small] [--redis-url redis://127.0.0.1:6379/0]

With `--redis-url` the app keeps its rendered pages in Redis as well, as in production (the
run first deletes the pages cached there by an earlier run).

`--small` (20 debtors, one worker, two clients, one short round; seconds) is the test suite's
run (tests/bench/): it fails as the full run would if a change broke the fill, the sign-in or
the pages (any error is a failure there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from bench.common import add_database_arguments, drop_database, reset_database

DATABASE = "recourse_bench_portal"
SECRET = "bench-portal-secret"


def fill(url: str, debtors: int) -> str:
    """The book of business; returns the reference the benchmark signs in with."""
    from flask_migrate import upgrade

    from agency import create_app
    from cases import audit
    from cases.case import change_status, next_references, open_case
    from cases.clients import create_client
    from cases.debtors import Address, Debtor, Email, match_key
    from cases.ledger import post_placement
    from payments.fees import parse_tiers, set_schedule
    from payments.posting import post_payment
    from shell.extensions import db

    actor = audit.Actor(None, "bench")
    app = create_app({"DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": SECRET})
    with app.app_context():
        upgrade()
        client = create_client(db.session, "ACME", "Acme Plumbing", actor=actor)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=actor)
        today = dt.date(2026, 11, 2)
        first = None
        for i in range(debtors):
            name = f"Debtor{i:05d}"
            debtor = Debtor(
                kind="consumer",
                first_name="Pat",
                last_name=name,
                match_key=match_key("consumer", f"Pat {name}", "10001"),
                addresses=[Address(line1="1 Main St", city="NYC", state="NY", postal_code="10001")],
                emails=[Email(address=f"{name.lower()}@example.com")],
            )
            db.session.add(debtor)
            for n in range(3 if i == 0 else 1):
                reference = next_references(db.session, today)[0]
                case = open_case(
                    db.session,
                    client=client,
                    debtor=debtor,
                    reference=reference,
                    account_number=f"A{i}-{n}",
                    referred_on=today,
                    due_date=today - dt.timedelta(days=120),
                    itemization_date=today - dt.timedelta(days=120),
                    actor=actor,
                )
                post_placement(
                    db.session, case, "principal", 500_000, f"placement:{reference}", today
                )
                change_status(db.session, case, "active", actor=actor, reason="bench")
                for k in range(20 if i == 0 else 2):
                    post_payment(
                        db.session,
                        case,
                        1_000 + k,
                        external_id=f"check:{reference}:{k}",
                        received_at=today + dt.timedelta(days=k % 20),
                        method="check",
                        actor=actor,
                    )
                first = first or reference
            if i % 200 == 199:
                db.session.commit()
                print(f"\r  filled {i + 1:,}/{debtors:,} debtors", end="", file=sys.stderr)
        db.session.commit()
        print(file=sys.stderr)
        # As autovacuum would leave the tables (the fill updated each case row many times).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        db.engine.dispose()
    return first


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(
    url: str, port: int, workers: int, threads: int = 4, redis_url: str = ""
) -> subprocess.Popen:
    """The app (with bench/portal_app.py's bare endpoint) under gunicorn on `port`: `workers`
    worker processes of `threads` threads each; it returns once the bare endpoint answers."""
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=redis_url, SECRET_KEY=SECRET)
    env["SESSION_COOKIE_SECURE"] = "false"
    env.pop("FLASK_DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread"]
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
            conn.request("GET", "/_bench/bare")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    process.kill()
    raise RuntimeError(f"gunicorn on port {port} did not start")


def session_cookie(response: http.client.HTTPResponse) -> str:
    for header, value in response.getheaders():
        if header.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0]
    raise RuntimeError("no session cookie")


def sign_in(port: int, reference: str) -> str:
    """The portal's session cookie for the debtor who owns `reference`."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/portal/login")
    page = conn.getresponse()
    html = page.read().decode()
    cookie = session_cookie(page)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    body = urllib.parse.urlencode(
        {
            "csrf_token": token.group(1),
            "reference": reference,
            "name": "Debtor00000",
            "postal_code": "10001",
        }
    )
    conn.request(
        "POST",
        "/portal/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    if response.status != 302:
        raise RuntimeError(f"sign-in failed: {response.status} {answer[:4000]!r}")
    return session_cookie(response)


def keep_alive_clients(
    ports: list[int],
    path: str,
    cookie: str,
    clients: int,
    seconds: float,
    first: int = 0,
    start: float | None = None,
) -> dict:
    """`clients` threads, each a keep-alive client of its own, client k on
    ports[(first + k) % len(ports)], from wall-clock time `start` (now, if None or past) for
    `seconds`; each keeps the session cookie the server renews, as a browser does. The requests
    each port answered (`counts`), the errors, every latency (s) and the time taken (`elapsed`).
    A top-level function, so that bench.horizontal can run it in load processes of its own."""
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

    threads = [
        threading.Thread(target=run, args=(ports[(first + k) % len(ports)],))
        for k in range(clients)
    ]
    if start is not None:
        time.sleep(max(0.0, start - time.time()))
    opened = time.time()
    end = opened + seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - opened
    return {"counts": counts, "errors": errors[0], "latencies": latencies, "elapsed": elapsed}


def percentiles_ms(latencies: list[float]) -> dict:
    """p50 and p95 in milliseconds of latencies in seconds (0 for none)."""
    ordered = sorted(latencies)
    if not ordered:
        return {"p50_ms": 0.0, "p95_ms": 0.0}
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
    }


def load(port: int, path: str, cookie: str, clients: int, seconds: float) -> dict:
    """`clients` threads, each on one keep-alive connection, for `seconds`."""
    run = keep_alive_clients([port], path, cookie, clients, seconds)
    requests = len(run["latencies"])
    return {
        "rps": requests / run["elapsed"],
        **percentiles_ms(run["latencies"]),
        "requests": requests,
        "errors": run["errors"],
    }


SMALL = {"debtors": 20, "clients": 2, "seconds": 0.3, "rounds": 1, "workers": 1}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--debtors", type=int, help="1,000")
    parser.add_argument("--clients", type=int, help="8")
    parser.add_argument("--seconds", type=float, help="5")
    parser.add_argument("--rounds", type=int, help="3")
    parser.add_argument("--workers", type=int, help="2")
    parser.add_argument("--redis-url", default="", help="the app's REDIS_URL (none)")
    add_database_arguments(parser, DATABASE)
    args = parser.parse_args(argv)
    full = {"debtors": 1_000, "clients": 8, "seconds": 5.0, "rounds": 3, "workers": 2}
    for name, value in (SMALL if args.small else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    url = reset_database(args.database, args.postgres_server)
    started = time.perf_counter()
    reference = fill(url, args.debtors)
    print(f"filled {args.debtors:,} debtors in {time.perf_counter() - started:.1f} s")
    if args.redis_url:
        from redis import Redis

        redis = Redis.from_url(args.redis_url)
        for key in redis.scan_iter("recourse:portal-page:*"):
            redis.delete(key)
    port = free_port()
    server = start_gunicorn(url, port, args.workers, redis_url=args.redis_url)
    try:
        cookie = sign_in(port, reference)
        pages = {"accounts": "/portal/", "case page": f"/portal/cases/{reference}"}
        for path in ["/_bench/bare", *pages.values()]:  # warm up
            load(port, path, cookie, args.clients, min(1.0, args.seconds))
        rounds = []
        for n in range(args.rounds):
            bare = load(port, "/_bench/bare", cookie, args.clients, args.seconds)
            measured = {
                name: load(port, path, cookie, args.clients, args.seconds)
                for name, path in pages.items()
            }
            rounds.append((bare, measured))
            print(f"round {n + 1}: bare {bare['rps']:.0f} req/s", end="")
            for name, m in measured.items():
                print(
                    f"; {name} {m['rps']:.0f} req/s (p50 {m['p50_ms']:.1f} ms,"
                    f" p95 {m['p95_ms']:.1f} ms) ratio {m['rps'] / bare['rps']:.2f}",
                    end="",
                )
            print()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    errors = sum(a["errors"] + sum(m["errors"] for m in b.values()) for a, b in rounds)
    print(
        f"\n{args.clients} clients, {args.workers} gunicorn workers x 4 threads, "
        f"{args.rounds} rounds of {args.seconds:.0f} s each (medians):"
    )
    print(f"  bare endpoint    {statistics.median(a['rps'] for a, _ in rounds):8.0f} req/s")
    for name in pages:
        rps = statistics.median(b[name]["rps"] for _, b in rounds)
        ratio = statistics.median(b[name]["rps"] / a["rps"] for a, b in rounds)
        print(f"  {name:<16} {rps:8.0f} req/s   ratio {ratio:.2f}   target >= 0.50")
    print(f"  errors           {errors:8d}   target 0")
    if args.small:
        drop_database(args.database, args.postgres_server)
    return {
        "errors": errors,
        "requests": {name: sum(b[name]["requests"] for _, b in rounds) for name in pages}
        | {"bare": sum(a["requests"] for a, _ in rounds)},
        "ratios": {
            name: statistics.median(b[name]["rps"] / a["rps"] for a, b in rounds) for name in pages
        },
    }


if __name__ == "__main__":
    main()
