"""Benchmark: signed Stripe webhooks through gunicorn on PostgreSQL, with an exact ledger.

Seeds a fresh PostgreSQL database with one client and N cases, makes real PaymentIntents in a
local Stripe (localstripe) and pays them with a card as the debtor's browser would, refunds
some of them in part (some twice), then sends their events, signed at send time, from 8
concurrent senders to POST /stripe/webhook of the app under gunicorn: 30% of the deliveries
are re-sends of an event already sent (same event id), 10% arrive before the event that came
before them (a refund before its payment, a second refund before the first), and half of the
second refunds of a charge are sent right beside the first, so the two race. In the same run,
as the baseline, the same senders make as many GET /healthz through the same gunicorn.

The webhook keeps each event and answers; the event is applied by the job it asks for: in the
request (in-process) without --redis-url, by --rq-workers `flask worker payments` processes
beside the deliveries with it. Prints events/s answered, the baseline's requests/s and their
ratio, and events/s applied (the unique events, from the first delivery until the inbox holds
none left to apply), then checks the ledger against
Stripe itself: every succeeded PaymentIntent posted exactly once, every refunded charge
reversed by exactly its refunded amount, fees to the cent, no external id twice. A delivery
not answered 200 is sent again before the check, as Stripe would; the run still fails (exit 1)
if any delivery was not answered 200 the first time, or if the ledger is not exact.

    .venv/bin/python -m bench.webhooks [--events 5000] [--cases 500] [--senders 8]
                                       [--workers 4] [--database-url postgresql://…/NAME]
    .venv/bin/python -m bench.webhooks --small   # 600 events, 60 cases, 2 workers, 4 senders: seconds (the tests)
        [--rounds 6]                             # /healthz and webhooks in turn, 6 rounds each
        [--gunicorn-config deploy/gunicorn.conf.py]  # production's server
        [--redis-url redis://… [--rq-workers 2]]     # applied by RQ workers, as in production

The database is `recourse_bench_webhooks` on the local server, dropped and made afresh, or the
one --database-url names (emptied first: it must be a database of its own). The goal: events/s
at least 0.5 of /healthz's requests/s (`--goal`; exit 1 below it only with `--require-goal`).

localstripe runs as tests/payments/conftest.py runs it (127.0.0.1 only, nothing written to
disk), with one more patch: it finds objects of a type by scanning its whole store, and exports
every Charge (so every PaymentIntent read) with its refunds found that way, so each read grows
with everything ever created (about 20 ms per PaymentIntent read at 1,200 payments). The patch
indexes the store by type; what it answers is unchanged.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa
import stripe

from bench.common import reset_database

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "recourse_bench_webhooks"
SECRET_KEY = "sk_test_12345"
WEBHOOK_SECRET = "whsec_bench"
FEE_BPS = 2500  # the client's rate for a case 120 days past due at referral
REFERRED_ON = dt.date(2026, 11, 2)
DUPLICATE_SHARE = 0.30
OUT_OF_ORDER_SHARE = 0.10
REFUND_EVENT_SHARE = 0.20  # of the unique events
STARTUP_SECONDS = 120.0  # a busy machine boots gunicorn workers slowly

_SERVE_LOCALSTRIPE = """
import sys

from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None

# Index the store by type: localstripe lists (and exports each charge's refunds) by scanning it all.
_by_type = {}


def _set(self, key, value):
    dict.__setitem__(self, key, value)
    _by_type.setdefault(key.split(":", 1)[0], {})[key] = value


def _del(self, key):
    dict.__delitem__(self, key)
    _by_type.get(key.split(":", 1)[0], {}).pop(key, None)


def _list_all(cls, url, limit=None, starting_after=None, **kwargs):
    if kwargs:
        raise resources.UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    li = resources.List(url, limit=limit, starting_after=starting_after)
    li._list = list(_by_type.get(cls.object, {}).values())
    return li


resources.Store.__setitem__ = _set
resources.Store.__delitem__ = _del
resources.StripeObject._api_list_all = classmethod(_list_all)
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=0.5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start(command: list[str], log: Path, probe: str, env=None, **probe_args) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if answers(probe, **probe_args):
            return process
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{command[0]} did not start:\n{log.read_text(errors='replace')[-2000:]}")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_localstripe(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(
        [sys.executable, "-c", _SERVE_LOCALSTRIPE, str(port)],
        log,
        f"{url}/v1/customers?limit=1",
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    return process, url


def app_environment(database_url: str, stripe_url: str, redis_url: str) -> dict[str, str]:
    """The environment of the app's processes (gunicorn, the workers)."""
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="bench",
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_url,
        SESSION_COOKIE_SECURE="false",
    )


def start_gunicorn(
    log: Path, database_url: str, stripe_url: str, workers: int, redis_url: str = "", config=None
):
    """gunicorn serving the app, /healthz and the webhook alike: plain (`-w N`), or with a
    config file (deploy/gunicorn.conf.py: production's, access log and all)."""
    port = free_port()
    env = app_environment(database_url, stripe_url, redis_url)
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{port}", "wsgi:app"]
    if config:
        env.update(RECOURSE_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY=str(workers))
        command = [gunicorn, "-c", str(config), "wsgi:app"]
    url = f"http://127.0.0.1:{port}"
    return start(command, log, f"{url}/healthz", env=env), url


def start_rq_workers(
    workdir: Path, database_url: str, stripe_url: str, redis_url: str, count: int
) -> list[subprocess.Popen]:
    """`flask worker payments` processes: they apply what the webhook keeps."""
    env = app_environment(database_url, stripe_url, redis_url)
    workers = []
    for n in range(count):
        with (workdir / f"worker-{n}.log").open("wb") as out:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "payments"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=ROOT,
                )
            )
    return workers


def wait_until_applied(database_url: str, timeout: float = 600.0) -> tuple[float, int]:
    """Wait until the inbox holds no event left to apply; returns when (perf_counter) and
    how many were left (0 unless the timeout came first)."""
    from shell.settings import database_uri

    engine = sa.create_engine(database_uri(database_url))
    deadline = time.perf_counter() + timeout
    try:
        while True:
            with engine.connect() as conn:
                left = conn.scalar(
                    sa.text("SELECT count(*) FROM stripe_inbox WHERE applied_at IS NULL")
                )
            now = time.perf_counter()
            if not left or now > deadline:
                return now, left
            time.sleep(0.05)
    finally:
        engine.dispose()


# -- the database ------------------------------------------------------------------------------


def empty_database(url: str) -> str:
    """The PostgreSQL database at `url`, with everything in it dropped (its public schema)."""
    from shell.settings import database_uri

    engine = sa.create_engine(database_uri(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def seed(database_url: str, n_cases: int, rng: random.Random) -> dict[str, int]:
    """Migrate, then one client with its fee schedule and `n_cases` cases through the domain
    services; returns each case's balance by reference."""
    from flask_migrate import upgrade

    from agency import create_app
    from cases import audit
    from cases.case import next_references, open_case
    from cases.clients import create_client
    from cases.debtors import Address, Debtor, match_key
    from cases.ledger import post_placement
    from payments.fees import parse_tiers, set_schedule
    from shell.extensions import db

    actor = audit.Actor(None, "bench")
    app = create_app({"DATABASE_URL": database_url, "REDIS_URL": "", "SECRET_KEY": "bench"})
    balances: dict[str, int] = {}
    with app.app_context():
        upgrade()
        session = db.session
        client = create_client(session, "BENCH", "Bench Co", actor=actor)
        set_schedule(session, client, parse_tiers(f"90={FEE_BPS},181=3300"), actor=actor)
        for i, reference in enumerate(next_references(session, REFERRED_ON, n_cases), 1):
            debtor = Debtor(
                kind="consumer",
                first_name="Pat",
                last_name=f"Name{i}",
                match_key=match_key("consumer", f"Pat Name{i}", "10001"),
                addresses=[
                    Address(line1=f"{i} Main St", city="Town", state="NY", postal_code="10001")
                ],
            )
            session.add(debtor)
            case = open_case(
                session,
                client=client,
                debtor=debtor,
                reference=reference,
                account_number=f"B-{i:06d}",
                referred_on=REFERRED_ON,
                due_date=REFERRED_ON - dt.timedelta(days=120),
                actor=actor,
            )
            balance = rng.randrange(200_000, 900_000)
            post_placement(session, case, "principal", balance, f"bench:{reference}", REFERRED_ON)
            balances[reference] = balance
        session.commit()
        db.engine.dispose()
    return balances


# -- Stripe ------------------------------------------------------------------------------------


@dataclass
class Payment:
    case_reference: str
    amount: int
    refunds: list[int] = field(default_factory=list)  # partial refunds, in the order made
    intent_id: str = ""
    charge_id: str = ""
    events: list[dict] = field(default_factory=list)  # succeeded, then one per refund


def plan_payments(
    balances: dict[str, int], n_intents: int, n_single: int, n_double: int, rng: random.Random
) -> list[Payment]:
    """Amounts per case that add up to no more than its balance (exactly it for one case in
    twenty, which then becomes paid), and which payments are refunded once or twice, in part."""
    references = list(balances)
    per_case: dict[str, int] = Counter(references[i % len(references)] for i in range(n_intents))
    payments: list[Payment] = []
    for reference, count in per_case.items():
        balance = balances[reference]
        budget = balance if rng.random() < 0.05 else rng.randrange(balance // 2, balance)
        weights = [rng.random() + 0.2 for _ in range(count)]
        amounts = [int(budget * w / sum(weights)) for w in weights[:-1]]
        payments += [Payment(reference, a) for a in [*amounts, budget - sum(amounts)]]
    rng.shuffle(payments)
    refunded = rng.sample(payments, n_single + n_double)
    for k, payment in enumerate(refunded):
        if k < n_double:
            first = rng.randrange(1, payment.amount // 2 + 1)
            payment.refunds = [first, rng.randrange(1, payment.amount - first + 1)]
        else:
            payment.refunds = [rng.randrange(1, payment.amount)]
    return payments


class StripeSide:
    """Per-thread clients to localstripe: the app's gateway and, for what a browser does, the
    Stripe API directly."""

    def __init__(self, url: str) -> None:
        from payments.gateway import StripeGateway

        self.url = url
        self._local = threading.local()
        self._gateway_class = StripeGateway

    @property
    def gateway(self):
        if not hasattr(self._local, "gateway"):
            self._local.gateway = self._gateway_class(SECRET_KEY, WEBHOOK_SECRET, api_base=self.url)
        return self._local.gateway

    @property
    def api(self) -> stripe.StripeClient:
        if not hasattr(self._local, "api"):
            self._local.api = stripe.StripeClient(
                SECRET_KEY, base_addresses={"api": self.url}, http_client=stripe.RequestsClient()
            )
        return self._local.api

    def pay(self, payment: Payment) -> None:
        """A PaymentIntent through the gateway, then a card and its confirmation, as
        `pay_in_browser` in tests/payments/test_gateway.py does."""
        intent = self.gateway.create_payment_intent(
            amount_cents=payment.amount,
            case_reference=payment.case_reference,
            idempotency_key=uuid.uuid4().hex,
        )
        card = self.api.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "cvc": "123",
                },
            }
        )
        self.api.v1.payment_intents.update(intent.id, params={"payment_method": card.id})
        confirmed = self.api.v1.payment_intents.confirm(intent.id).to_dict()
        if confirmed["status"] != "succeeded":
            raise RuntimeError(f"{intent.id} did not succeed: {confirmed['status']}")
        payment.intent_id = intent.id
        charge = confirmed.get("latest_charge")
        payment.charge_id = charge["id"] if isinstance(charge, dict) else charge
        payment.events = [event("payment_intent.succeeded", confirmed)]

    def refund(self, payment: Payment) -> None:
        """Each partial refund, and the charge as it then stands for its `charge.refunded`."""
        for amount in payment.refunds:
            self.gateway.refund(
                payment_intent_id=payment.intent_id,
                amount_cents=amount,
                idempotency_key=uuid.uuid4().hex,
            )
            charge = self.api.v1.charges.retrieve(payment.charge_id).to_dict()
            payment.events.append(event("charge.refunded", charge))

    def truth(self, payment: Payment) -> tuple[str, int, int]:
        """What Stripe says now: status, amount received, amount refunded."""
        intent = self.gateway.retrieve_payment_intent(payment.intent_id)
        refunded = 0
        if payment.refunds:
            charge = self.api.v1.charges.retrieve(intent.latest_charge_id)
            refunded = int(charge["amount_refunded"])
        return intent.status, intent.amount_received_cents, refunded


def event(kind: str, obj: dict) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": kind,
        "created": int(obj.get("created") or time.time()),
        "data": {"object": obj},
    }


def in_threads(fn, items, threads: int) -> None:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(fn, items):
            pass


# -- the deliveries ----------------------------------------------------------------------------


@dataclass
class Schedule:
    deliveries: list[dict]  # events in the order sent, re-sends included
    unique: int
    duplicates: int
    out_of_order: int
    back_to_back: int  # second refunds sent right beside the first (racing it)


def schedule(payments: list[Payment], n_events: int, rng: random.Random) -> Schedule:
    """Events in the order Stripe made them, then some moved before the one they follow, and
    re-sends of random events (half within a few deliveries, racing the first, half later)."""
    keyed: list[tuple[float, dict]] = []
    predecessor: dict[str, str] = {}
    refund_events: list[tuple[int, int]] = []  # (payment index, refund index)
    for i, payment in enumerate(payments):
        for k, ev in enumerate(payment.events[1:], 1):
            predecessor[ev["id"]] = payment.events[k - 1]["id"]
            refund_events.append((i, k))
    n_out_of_order = round(n_events * OUT_OF_ORDER_SHARE)
    moved = set(rng.sample(refund_events, n_out_of_order))
    back_to_back = 0
    for i, payment in enumerate(payments):
        keys = [float(i)]
        for k in range(1, len(payment.events)):
            if k == 2 and rng.random() < 0.5:
                keys.append(keys[1] + 0.001)  # a second refund right after the first
                back_to_back += 1
            else:
                keys.append(keys[k - 1] + rng.uniform(5, 300))
        for k in range(1, len(payment.events)):
            if (i, k) in moved:  # before the event it follows, sometimes right before
                keys[k] = keys[k - 1] - (0.0005 if rng.random() < 0.5 else rng.uniform(1, 50))
        keyed += [(key, ev) for key, ev in zip(keys, payment.events, strict=True)]
    unique = len(keyed)
    n_duplicates = n_events - unique
    for key, ev in rng.choices(keyed, k=n_duplicates):
        lag = rng.uniform(0.01, 3) if rng.random() < 0.5 else rng.uniform(5, len(payments))
        keyed.append((key + lag, ev))
    keyed.sort(key=lambda pair: pair[0])
    deliveries = [ev for _key, ev in keyed]
    first: dict[str, int] = {}
    for position, ev in enumerate(deliveries):
        first.setdefault(ev["id"], position)
    out_of_order = sum(1 for eid, before in predecessor.items() if first[eid] < first[before])
    return Schedule(deliveries, unique, n_duplicates, out_of_order, back_to_back)


# -- sending -----------------------------------------------------------------------------------


def blast(items: list, send, senders: int) -> tuple[float, list[tuple[int, str]]]:
    """Send everything from `senders` threads, each with its own HTTP session; returns the
    elapsed seconds and each item's (status, outcome)."""
    local = threading.local()

    def one(item):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return send(local.session, item)

    start_time = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        results = list(pool.map(one, items))
    return time.perf_counter() - start_time, results


def retry_like_stripe(deliveries: list[dict], results, send, rounds: int = 3) -> tuple[int, int]:
    """Stripe sends again what was not answered 2xx (over hours; here at once, one at a
    time): returns how many events were retried and how many still failed."""
    failed = [ev for ev, (status, _) in zip(deliveries, results, strict=True) if status != 200]
    retried = len(failed)
    with requests.Session() as session:
        for _ in range(rounds):
            failed = [ev for ev in failed if send(session, ev)[0] != 200]
    return retried, len(failed)


def healthz(base: str):
    def send(session: requests.Session, _item) -> tuple[int, str]:
        response = session.get(f"{base}/healthz", timeout=60)
        return response.status_code, ""

    return send


def webhook(base: str):
    from payments.gateway import sign_payload

    def send(session: requests.Session, ev: dict) -> tuple[int, str]:
        payload = json.dumps(ev).encode()
        response = session.post(
            f"{base}/stripe/webhook",
            data=payload,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET),
            },
            timeout=60,
        )
        if response.status_code != 200:
            return response.status_code, f"HTTP {response.status_code}"
        return 200, "sent again" if response.json().get("duplicate") else "kept"

    return send


# -- the check ---------------------------------------------------------------------------------


def fee(amount_cents: int) -> int:
    from payments.fees import fee_cents

    return fee_cents(amount_cents, FEE_BPS)


def check_ledger(
    database_url: str, side: StripeSide, payments: list[Payment], plan: Schedule, balances
) -> list[str]:
    """What the ledger must hold, from Stripe's own PaymentIntents and charges, against what
    it holds; returns the differences (none: exact)."""
    from shell.settings import database_uri

    truth: dict[str, tuple[str, int, int]] = {}

    def read(payment: Payment) -> None:
        truth[payment.intent_id] = side.truth(payment)

    in_threads(read, payments, 4)
    problems: list[str] = []
    engine = sa.create_engine(database_uri(database_url))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.id, e.kind, e.amount_cents, e.fee_cents, e.external_id, e.reverses_id,"
                " c.reference FROM ledger_entries e JOIN cases c ON c.id = e.case_id"
            )
        ).all()
        twice = conn.execute(
            sa.text(
                "SELECT external_id FROM ledger_entries GROUP BY external_id HAVING count(*) > 1"
            )
        ).all()
        events = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT event_id) FROM stripe_events")
        ).one()
        unmatched = conn.scalar(sa.text("SELECT count(*) FROM unmatched_payments"))
        statuses = dict(conn.execute(sa.text("SELECT reference, status FROM cases")).all())
    engine.dispose()

    by_kind: dict[str, list] = defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(row)
    payment_rows = {r.external_id: r for r in by_kind["payment"]}
    reversals: dict[int, list] = defaultdict(list)
    for r in by_kind["reversal"]:
        reversals[r.reverses_id].append(r)

    expected_paid = expected_refunded = refunded_charges = 0
    for p in payments:
        status, received, refunded = truth[p.intent_id]
        if status != "succeeded":
            problems.append(f"{p.intent_id} is {status} at Stripe")
            continue
        expected_paid += received
        expected_refunded += refunded
        refunded_charges += refunded > 0
        row = payment_rows.get(p.intent_id)
        if row is None:
            problems.append(f"{p.intent_id} ({received}) not posted")
            continue
        if (-row.amount_cents, row.fee_cents, row.reference) != (
            received,
            fee(received),
            p.case_reference,
        ):
            problems.append(
                f"{p.intent_id}: posted {-row.amount_cents} fee {row.fee_cents} on "
                f"{row.reference}, Stripe {received} fee {fee(received)} on {p.case_reference}"
            )
        back = reversals.get(row.id, [])
        got = sum(r.amount_cents for r in back)
        fee_back = -sum(r.fee_cents for r in back)
        if (got, fee_back) != (refunded, fee(refunded)):
            problems.append(
                f"{p.intent_id}: reversed {got} (fee back {fee_back}) in {len(back)} entries "
                f"{[r.amount_cents for r in back]}; Stripe refunded {refunded} "
                f"(fee back {fee(refunded)}) in {len(p.refunds)} refunds {p.refunds}"
            )
    n_refund_events = sum(len(p.refunds) for p in payments)
    paid_sum = -sum(r.amount_cents for r in by_kind["payment"])
    reversed_sum = sum(r.amount_cents for r in by_kind["reversal"])
    placed = sum(r.amount_cents for r in by_kind["placement"])
    print(f"\n{'ledger':<12}{'entries':>9}{'expected':>18}{'cents':>14}{'expected':>14}")
    print(
        f"{'payment':<12}{len(by_kind['payment']):>9}{len(payments):>18}"
        f"{paid_sum:>14}{expected_paid:>14}"
    )
    print(
        f"{'reversal':<12}{len(by_kind['reversal']):>9}"
        f"{f'{refunded_charges}..{n_refund_events}':>18}"
        f"{reversed_sum:>14}{expected_refunded:>14}"
    )
    print(
        f"{'placement':<12}{len(by_kind['placement']):>9}{len(balances):>18}"
        f"{placed:>14}{sum(balances.values()):>14}"
    )
    if len(by_kind["payment"]) != len(payments) or paid_sum != expected_paid:
        problems.append("payments: count or sum differs from Stripe")
    if not refunded_charges <= len(by_kind["reversal"]) <= n_refund_events:
        problems.append("reversals: more entries than refunds, or a refunded charge without one")
    if reversed_sum != expected_refunded:
        problems.append(f"reversals: {reversed_sum} cents, Stripe refunded {expected_refunded}")
    if placed != sum(balances.values()) or len(by_kind["placement"]) != len(balances):
        problems.append("placements changed")
    others = set(by_kind) - {"payment", "reversal", "placement"}
    if others:
        problems.append(f"unexpected entries: {sorted(others)}")
    if twice:
        problems.append(f"{len(twice)} external ids posted twice")
    if tuple(events) != (plan.unique, plan.unique):
        problems.append(f"stripe_events: {events[0]} rows, {events[1]} ids; {plan.unique} sent")
    if unmatched:
        problems.append(f"{unmatched} payments held as unmatched")
    net = Counter()
    for row in rows:
        net[row.reference] += row.amount_cents
    wrong_status = [
        ref for ref, status in statuses.items() if (status == "paid") != (net[ref] <= 0)
    ]
    if wrong_status:
        problems.append(
            f"{len(wrong_status)} cases paid iff balance <= 0 fails: {wrong_status[:5]}"
        )
    return problems


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="deliveries, re-sends included")
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--setup-threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database to empty")
    parser.add_argument("--small", action="store_true", help="600 events, 60 cases, 2 workers")
    parser.add_argument("--goal", type=float, default=0.5, help="events/s to /healthz's req/s")
    parser.add_argument("--require-goal", action="store_true", help="exit 1 below the goal")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate /healthz and webhooks in this many rounds (a load that changes during "
        "the run then moves both alike)",
    )
    parser.add_argument(
        "--gunicorn-config", default=None, help="e.g. deploy/gunicorn.conf.py (production's)"
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="REDIS_URL for the app: events are applied by RQ workers (--rq-workers), not "
        "in the request",
    )
    parser.add_argument("--rq-workers", type=int, default=2, help="with --redis-url")
    args = parser.parse_args(argv)
    if args.small:
        args.events, args.cases, args.workers, args.senders = 600, 60, 2, 4
    if args.events < 100:
        parser.error("--events must be at least 100")

    rng = random.Random(args.seed)
    unique = args.events - round(args.events * DUPLICATE_SHARE)
    n_refund_events = round(unique * REFUND_EVENT_SHARE)
    n_double = n_refund_events // 7
    n_single = n_refund_events - 2 * n_double
    n_intents = unique - n_refund_events
    if round(args.events * OUT_OF_ORDER_SHARE) > n_refund_events:
        parser.error("too few refunds to deliver 10% out of order")

    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    localstripe = gunicorn = None
    rq_workers: list[subprocess.Popen] = []
    passed = False
    try:
        t0 = time.perf_counter()
        database_url = (
            empty_database(args.database_url) if args.database_url else reset_database(DATABASE)
        )
        balances = seed(database_url, args.cases, rng)
        t_seed = time.perf_counter() - t0

        localstripe, stripe_url = start_localstripe(workdir / "localstripe.log")
        side = StripeSide(stripe_url)
        payments = plan_payments(balances, n_intents, n_single, n_double, rng)
        t0 = time.perf_counter()
        in_threads(side.pay, payments, args.setup_threads)
        t_intents = time.perf_counter() - t0
        t0 = time.perf_counter()
        in_threads(side.refund, [p for p in payments if p.refunds], args.setup_threads)
        t_refunds = time.perf_counter() - t0
        plan = schedule(payments, args.events, rng)
        print(
            f"setup: database + {args.cases} cases {t_seed:.1f} s; {len(payments)} paid "
            f"PaymentIntents {t_intents:.1f} s; {n_single + n_double} charges refunded "
            f"({n_double} twice) {t_refunds:.1f} s"
        )

        gunicorn, base = start_gunicorn(
            workdir / "gunicorn.log",
            database_url,
            stripe_url,
            args.workers,
            args.redis_url,
            args.gunicorn_config,
        )
        if args.redis_url:
            from redis import Redis
            from rq import Queue

            from payments.webhooks import APPLY_EVENTS
            from shell.job_runner import RQRunner

            redis = Redis.from_url(args.redis_url)  # nothing left by an earlier run:
            Queue("payments", connection=redis).empty()  # no job of its database,
            redis.delete(RQRunner.waiting_key(APPLY_EVENTS.name))  # no nudge said to wait
            rq_workers = start_rq_workers(
                workdir, database_url, stripe_url, args.redis_url, args.rq_workers
            )
        blast(range(200), healthz(base), args.senders)  # every worker connected
        send = webhook(base)
        first_sent = None
        b_elapsed = elapsed = 0.0
        b_results, results = [], []
        size = -(-len(plan.deliveries) // max(1, args.rounds))
        for start_at in range(0, len(plan.deliveries), size):
            part = plan.deliveries[start_at : start_at + size]
            took, answered = blast(range(len(part)), healthz(base), args.senders)
            b_elapsed, b_results = b_elapsed + took, b_results + answered
            first_sent = first_sent or time.perf_counter()
            took, answered = blast(part, send, args.senders)
            elapsed, results = elapsed + took, results + answered
        baseline = len(b_results) / b_elapsed
        rate = len(plan.deliveries) / elapsed
        retried, still_failing = retry_like_stripe(plan.deliveries, results, send)
        applied_at, left = wait_until_applied(database_url)
        applying = applied_at - first_sent
        stop(gunicorn)
        for worker in rq_workers:
            stop(worker)
        statuses = Counter(status for status, _ in results)
        b_statuses = Counter(status for status, _ in b_results)
        outcomes = Counter(outcome for _, outcome in results)

        print(f"\nevents sent      {len(plan.deliveries):>8}")
        print(f"unique events    {plan.unique:>8}")
        print(f"duplicates       {plan.duplicates:>8}")
        print(f"out of order     {plan.out_of_order:>8}")
        print(f"racing refunds   {plan.back_to_back:>8}  (second refund sent beside the first)")
        print(f"elapsed          {elapsed:>8.1f} s")
        print(f"events/s         {rate:>8.1f}  ({args.senders} senders, {args.workers} workers)")
        print(f"baseline req/s   {baseline:>8.1f}  (GET /healthz, same senders and workers)")
        ratio = rate / baseline
        print(
            f"ratio            {ratio:>8.3f}  (events/s to /healthz requests/s; goal {args.goal})"
        )
        where = (
            f"{args.rq_workers} RQ workers, beside the deliveries"
            if args.redis_url
            else "in the request, before its answer"
        )
        print(
            f"applied/s        {plan.unique / applying:>8.1f}  ({plan.unique} unique events "
            f"applied {applying:.1f} s after the first was sent; {where})"
        )
        if left:
            print(f"NOT APPLIED      {left:>8}  (still in the inbox after the wait)")
        print(f"statuses         {dict(statuses)}  (/healthz: {dict(b_statuses)})")
        if retried:
            print(
                f"retried          {retried:>8}  (as Stripe would; {still_failing} still failing)"
            )
        print("outcomes         " + ", ".join(f"{k}: {v}" for k, v in outcomes.most_common()))

        problems = check_ledger(database_url, side, payments, plan, balances)
        exact = not problems
        for problem in problems[:20]:
            print(f"  {problem}")
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more")
        after = " (after the retries)" if retried else ""
        print(f"\nledger exact: {'yes' if exact else 'no'}{after}")
        all_ok = set(statuses) == {200} and set(b_statuses) == {200}
        if not all_ok:
            print("not every delivery was answered 200 the first time")
        passed = exact and all_ok and not left and (ratio >= args.goal or not args.require_goal)
        return 0 if passed else 1
    finally:
        stop(gunicorn)
        for worker in rq_workers:
            stop(worker)
        stop(localstripe)
        if passed:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"gunicorn and localstripe logs: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
