"""The fault suite's world: the app served by gunicorn on a database of its own, with a Redis
server, a fake Stripe (localstripe) and an SMTP server that these tests start, stop and kill.

Nothing here shares the rolled-back test transaction of tests/conftest.py: the server commits
for real, so these tests never request `db_session` or `client`. They seed what they need
through the app's own services, committed with `step()` in an app of their own (`local`) on
the same database, and read the outcome back the same way. The server runs on the real clock,
so the suite's frozen day is switched off here."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from agency import create_app
from cases import audit
from cases.case import Case, next_references, open_case
from cases.clients import Client, create_client
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.ledger import LedgerEntry
from cases.users import User, create_user, issue_token
from payments.fees import parse_tiers, set_schedule
from payments.posting import post_placement
from portal import pages
from shell.extensions import db
from shell.settings import database_uri
from shell.unit_of_work import step
from tests.conftest import PASSWORD, _Inbox
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]
PUBLISHABLE_KEY = "pk_test_faults"
SEED = audit.Actor(None, "faults")
# Generous: it only waits until the process answers, and a loaded CI machine has taken over 30 s.
STARTUP_SECONDS = 120.0
# How long the server waits on a fake Stripe that stopped answering before it says so.
STRIPE_TIMEOUT_SECONDS = 2
# What a debtor must never read: a host, a port, an exception.
INTERNALS = (
    "127.0.0.1",
    "localhost",
    "HTTPConnectionPool",
    "port=",
    "Errno",
    "Traceback",
    "Max retries",
    "psycopg",
    "OperationalError",
    "sqlalchemy",
    "Redis",
)


@pytest.fixture(autouse=True)
def fixed_day():
    """The server and its workers run on the real clock; so do these tests."""
    yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], object], what: str, timeout: float = 60.0, every=0.05):
    """Poll `check` until it returns something true; its value. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def shown_internals(text: str) -> list[str]:
    return [word for word in INTERNALS if word in text]


# --- the database ----------------------------------------------------------------------------


def _fresh_database(tmp: Path) -> str:
    """A new, empty database for the server: beside TEST_DATABASE_URL's (its name +
    `_gunicorn`) on PostgreSQL, a file on SQLite."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{tmp / 'faults.sqlite3'}"
    target = sa.make_url(database_uri(url))
    target = target.set(database=f"{target.database}_gunicorn")
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    return target.render_as_string(hide_password=False)


def on_postgres(url: str) -> bool:
    return url.startswith("postgres")


# --- the processes ---------------------------------------------------------------------------


class RedisServer:
    """A redis-server of our own on its own port, so taking it away touches no one else's."""

    def __init__(self, workdir: Path):
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        from redis import Redis

        def answers():
            try:
                return Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_for(answers, "redis-server to answer")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


@dataclass
class World:
    """The server and what it talks to, and the tests' handles on them."""

    base: str
    database_url: str
    env: dict
    local: Flask
    redis: RedisServer
    stripe_url: str
    stripe: subprocess.Popen
    inbox: _Inbox
    tmp: Path
    children: list = field(default_factory=list)

    @property
    def postgres(self) -> bool:
        return on_postgres(self.database_url)

    def flask(self, *args: str, timeout: float = 60, **env) -> subprocess.CompletedProcess:
        """`python -m flask --app wsgi ...` against the server's database, Redis and Stripe."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            env={**self.env, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def spawn(self, *args: str, log: str, **env) -> subprocess.Popen:
        """A long-running `flask --app wsgi ...` (a worker), in its own process group."""
        with (self.tmp / log).open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", *args],
                env={**self.env, **env},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children.append(process)
        return process

    def read(self, do: Callable):
        """`do(session)` in an app of our own on the server's database."""
        with self.local.app_context(), step() as session:
            return do(session)

    def pause_stripe(self) -> None:
        """The fake Stripe stops answering (SIGSTOP): connections hang, as with an outage."""
        self.stripe.send_signal(signal.SIGSTOP)

    def resume_stripe(self) -> None:
        self.stripe.send_signal(signal.SIGCONT)


def _start_stripe(port: int, webhook: str, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo.fake_stripe", "--port", str(port)]
            + ["--webhook", webhook, "--secret", WEBHOOK_SECRET],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def answers():
        try:
            return requests.get(
                f"http://127.0.0.1:{port}/v1/customers?limit=1",
                headers={"Authorization": f"Bearer {SECRET_KEY}"},
                timeout=0.5,
            ).ok
        except requests.RequestException:
            return process.poll() is not None  # it died: fail below

    wait_for(answers, "the fake Stripe to answer", STARTUP_SECONDS)
    if process.poll() is not None:
        pytest.fail(f"localstripe did not start:\n{log.read_text(errors='replace')[-2000:]}")
    return process


def _start_gunicorn(port: int, env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "2", "--threads", "4", "--timeout", "30", "wsgi:app"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def healthy():
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    wait_for(healthy, "gunicorn to serve /healthz", STARTUP_SECONDS)
    return process


@pytest.fixture(scope="package")
def world(tmp_path_factory) -> Iterator[World]:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (the fault suite starts and stops its own)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("faults")
    database_url = _fresh_database(tmp)
    redis = RedisServer(tmp)
    redis.start()

    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()

    web_port, stripe_port = free_port(), free_port()
    stripe_url = f"http://127.0.0.1:{stripe_port}"
    config = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "SECRET_KEY": "faults-secret",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_TIMEOUT_SECONDS": str(STRIPE_TIMEOUT_SECONDS),
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "SESSION_COOKIE_SECURE": "false",
        "MFA_REQUIRED": "false",  # client users sign in with a password alone here
        "DOCUMENT_STORE": str(tmp / "documents"),
    }
    env = {**os.environ, **config, "PYTHONPATH": str(ROOT)}
    env.pop("FLASK_DEBUG", None)

    local = create_app({**config, "SESSION_COOKIE_SECURE": False})
    with local.app_context():
        upgrade()

    processes = []
    try:
        stripe = _start_stripe(
            stripe_port, f"http://127.0.0.1:{web_port}/stripe/webhook", tmp / "stripe.log"
        )
        processes.append(stripe)
        server = _start_gunicorn(web_port, env, tmp / "gunicorn.log")
        processes.append(server)
        world = World(
            base=f"http://127.0.0.1:{web_port}",
            database_url=database_url,
            env=env,
            local=local,
            redis=redis,
            stripe_url=stripe_url,
            stripe=stripe,
            inbox=inbox,
            tmp=tmp,
        )
        yield world
        for child in world.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    finally:
        for process in reversed(processes):
            if process is processes[0]:
                process.send_signal(signal.SIGCONT)  # a test may have left Stripe paused
            stop(process)
        smtp.stop()
        redis.stop()
        with local.app_context():
            db.engine.dispose()
            pages.dispose(local)


# --- seeding, through the app's own services -------------------------------------------------

# (state, ZIP, zone) of debtors, east to west: a test that emails picks one where it is daytime.
PLACES = [
    ("NY", "10001", "America/New_York"),
    ("IL", "60601", "America/Chicago"),
    ("CO", "80202", "America/Denver"),
    ("CA", "94103", "America/Los_Angeles"),
    ("AK", "99501", "America/Anchorage"),
    ("HI", "96813", "Pacific/Honolulu"),
]
# A phone's area code is a place the debtor may be too (the contact rules count every zone):
# each place's debtor has a number from there.
AREA_CODES = {"NY": "212", "IL": "312", "CO": "303", "CA": "415", "AK": "907", "HI": "808"}


def daytime_place() -> tuple[str, str] | None:
    """A (state, ZIP) where it is now between 9:00 and 20:00, well inside the hours email is
    allowed (8:00 to 21:00); None from about 06:00 to 14:00 UTC, when it is night in all."""
    now = dt.datetime.now(dt.UTC)
    for state, postal_code, zone in PLACES:
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 20:
            return state, postal_code
    return None


@dataclass
class Seeded:
    client_code: str
    case_reference: str
    last_name: str
    postal_code: str


class Seeder:
    """Rows for one test, committed through the services, in `local`."""

    def __init__(self, world: World):
        self.world = world
        self.count = 0

    def run(self, do: Callable):
        with self.world.local.app_context(), step() as session:
            return do(session)

    def client(self, code: str) -> str:
        def do(session):
            client = create_client(session, code, f"{code} Supply", actor=SEED)
            set_schedule(session, client, parse_tiers("90=2500,181=3300"), actor=SEED)
            return client.code

        return self.run(do)

    def user(self, role: str, client_code: str | None = None) -> str:
        self.count += 1
        email = f"{role}{self.count}-{time.monotonic_ns()}@faults.test"

        def do(session):
            client = (
                session.scalar(sa.select(Client).where(Client.code == client_code))
                if client_code
                else None
            )
            return create_user(session, email, PASSWORD, role, actor=SEED, client=client).email

        return self.run(do)

    def token(self, email: str) -> dict:
        def do(session):
            user = session.scalar(sa.select(User).where(User.email == email))
            return issue_token(session, user, actor=SEED)

        return {"Authorization": f"Bearer {self.run(do)}"}

    def case(
        self,
        client_code: str,
        *,
        principal: int = 100_000,
        last_name: str = "Garcia",
        place: tuple[str, str] = ("NY", "10001"),
        email: str = "maria@example.com",
    ) -> Seeded:
        self.count += 1
        state, postal_code = place
        today = dt.date.today()

        def do(session):
            client = session.scalar(sa.select(Client).where(Client.code == client_code))
            debtor = Debtor(
                kind="consumer",
                first_name="Maria",
                last_name=last_name,
                match_key=match_key("consumer", f"Maria {last_name}", postal_code),
                addresses=[
                    Address(line1="1 Main St", city="Town", state=state, postal_code=postal_code)
                ],
                phones=[Phone(number=f"+1{AREA_CODES.get(state, '212')}5550100", type="mobile")],
                emails=[Email(address=email)],
            )
            session.add(debtor)
            referred_on = today - dt.timedelta(days=20)
            reference = next_references(session, referred_on)[0]
            case = open_case(
                session,
                client=client,
                debtor=debtor,
                reference=reference,
                account_number=f"F-{self.count:05d}-{time.monotonic_ns()}",
                referred_on=referred_on,
                due_date=referred_on - dt.timedelta(days=120),
                actor=SEED,
            )
            post_placement(
                session, case, "principal", principal, f"faults:{reference}", referred_on
            )
            case.status = "active"
            return reference

        reference = self.run(do)
        return Seeded(client_code, reference, last_name, postal_code)

    def read(self, do: Callable):
        return self.world.read(do)


def payments_on(world: World, reference: str) -> list[tuple[int, str]]:
    """The payments the ledger holds on a case: (cents paid, external id), oldest first."""

    def do(session):
        case_id = session.scalar(sa.select(Case.id).where(Case.reference == reference))
        rows = session.scalars(
            sa.select(LedgerEntry)
            .where(LedgerEntry.case_id == case_id, LedgerEntry.kind == "payment")
            .order_by(LedgerEntry.id)
        )
        return [(-row.amount_cents, row.external_id) for row in rows]

    return world.read(do)


@pytest.fixture
def seed(world) -> Seeder:
    return Seeder(world)


# --- talking to the server like a browser ----------------------------------------------------


def csrf(page: str) -> str:
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', page)
    assert tag, "no CSRF token on the page"
    return re.search(r'value="([^"]+)"', tag.group(0)).group(1)


def staff_login(world: World, email: str) -> requests.Session:
    browser = requests.Session()
    token = csrf(browser.get(f"{world.base}/login", timeout=10).text)
    answer = browser.post(
        f"{world.base}/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return browser


def portal_login(world: World, case: Seeded) -> requests.Session:
    browser = requests.Session()
    token = csrf(browser.get(f"{world.base}/portal/login", timeout=10).text)
    answer = browser.post(
        f"{world.base}/portal/login",
        data={
            "reference": case.case_reference,
            "name": case.last_name,
            "postal_code": case.postal_code,
            "csrf_token": token,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return browser
