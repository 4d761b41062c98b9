"""Fixtures: one app per test session on SQLite or PostgreSQL (TEST_DATABASE_URL), with
Redis (TEST_REDIS_URL) when given; schema from the migrations; each test in a transaction
that is rolled back at the end."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
import time_machine
from flask import g
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from agency import create_app
from cases import audit
from cases.case import Case, next_references, open_case
from cases.clients import Client, create_client
from cases.debtors import Address, Debtor, Email, Phone, match_key
from cases.users import User, create_user, issue_token
from cases.validation import validation_period_end
from payments.fees import parse_tiers, set_schedule
from payments.posting import post_placement
from portal import pages
from shell.extensions import db
from shell.settings import database_uri
from shell.settings import load as load_settings

PASSWORD = "correct-horse-battery"
TEST_ACTOR = audit.Actor(None, "test")


def _guard_network():
    """Tests talk to 127.0.0.1 only."""
    real_connect = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise RuntimeError(f"tests may not reach {host}")
        return real_connect(self, address)

    socket.socket.connect = connect


_guard_network()


def _reset_postgres(url: str) -> None:
    """Start from an empty database (created if missing), so the migrations build it all."""
    target = sa.make_url(database_uri(url))
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith("postgres"):
            _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    if url:
        from redis import Redis

        Redis.from_url(url).flushdb()
    return url


@pytest.fixture(autouse=True)
def fresh_sign_in_counters(redis_url):
    """Sign-in counters kept in Redis outlive a test's rolled-back transaction: each test
    starts without any."""
    if redis_url:
        from redis import Redis

        redis = Redis.from_url(redis_url)
        stale = list(redis.scan_iter("signin:*"))
        if stale:
            redis.delete(*stale)
    yield


class TestClient(FlaskClient):
    """Each request sees what the test made so far (committed to the test's savepoint, so a
    view's rollback cannot undo it) and starts with a clean `g`, as a real request does: the
    test's app context is shared with the requests, and `g` would otherwise carry the
    previous request's signed-in user."""

    def open(self, *args, **kwargs):
        db.session.commit()
        vars(g).clear()
        return super().open(*args, **kwargs)


class TestCliRunner(FlaskCliRunner):
    def invoke(self, *args, **kwargs):
        db.session.commit()
        return super().invoke(*args, **kwargs)


@pytest.fixture(scope="session")
def app(database_url, redis_url, tmp_path_factory):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret",
            # Sign-ins take a password alone, except in tests that use the `mfa_required`
            # fixture (tests/agency/test_second_factor.py).
            "MFA_REQUIRED": False,
            "DOCUMENT_STORE": str(tmp_path_factory.mktemp("documents")),
            # Many tests sign staff in once and then travel hours or days (the suite's clock,
            # below): a year before a staff session ends. The `session_limits` fixture puts the
            # real limits back for the tests of them.
            "STAFF_IDLE_MINUTES": 365 * 24 * 60,
            "SESSION_LIFETIME_HOURS": 365 * 24,
        }
    )
    app.test_client_class = TestClient
    app.test_cli_runner_class = TestCliRunner
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
        pages.dispose(app)


# The suite lives on a fixed day, so no date in a test depends on the day it runs (signed
# session cookies, "today", ages of accounts). Tests travel forward from here as they need.
SUITE_DAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def fixed_day():
    with time_machine.travel(SUITE_DAY, tick=True):
        yield


SESSION_LIMITS = ("STAFF_IDLE_MINUTES", "PORTAL_IDLE_MINUTES", "SESSION_LIFETIME_HOURS")


def session_limit_defaults(tmp_path) -> dict:
    """The session limits a deployment has when it does not set them."""
    loaded = load_settings(str(tmp_path), {}, {"SECRET_KEY": "unused"})
    return {key: loaded[key] for key in SESSION_LIMITS}


@pytest.fixture
def session_limits(app, tmp_path):
    """The limits of a real deployment (the suite's own app keeps staff signed in for long)."""
    real = session_limit_defaults(tmp_path)
    suite = {key: app.config[key] for key in real}
    app.config.update(real)
    yield
    app.config.update(suite)


@pytest.fixture
def db_session(app):
    """A session whose every commit is a SAVEPOINT inside one transaction rolled back at the
    end (pallets-eco/flask-sqlalchemy#1171). Jobs and requests in the test share it."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        # A plain SQLAlchemy session: Flask-SQLAlchemy's own would pick the engine, not
        # this connection. Scoped to the app context, as Flask-SQLAlchemy's is.
        db.session = orm.scoped_session(
            orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def client(app, db_session):
    return app.test_client()


@pytest.fixture
def cli(app, db_session):
    return app.test_cli_runner()


# --- factories ---------------------------------------------------------------------------


@pytest.fixture
def make_client(db_session):
    def make(code="ACME", name="Acme Plumbing", tiers="90=2500,181=3300,366=4000", **terms):
        client = create_client(db_session, code, name, actor=TEST_ACTOR, **terms)
        set_schedule(db_session, client, parse_tiers(tiers), actor=TEST_ACTOR)
        db_session.flush()
        return client

    return make


@pytest.fixture
def make_user(db_session):
    def make(role="collector", email=None, client: Client | None = None, password=PASSWORD):
        email = email or f"{role}{make.count}@recourse.test"
        make.count += 1
        return create_user(db_session, email, password, role, actor=TEST_ACTOR, client=client)

    make.count = 0
    return make


@pytest.fixture
def make_case(db_session):
    def make(
        client: Client,
        *,
        principal=100_000,
        interest=0,
        fees=0,
        status="new",
        last_name="Garcia",
        first_name="Maria",
        postal_code="10001",
        state="NY",
        phone="+12125550100",
        email="maria@example.com",
        referred_on=None,
        days_past_due=120,
        account_number=None,
        kind="consumer",
        company_name="",
        close_reason=None,
    ) -> Case:
        referred_on = referred_on or dt.date(2026, 11, 2)
        name = company_name if kind == "commercial" else f"{first_name} {last_name}"
        debtor = Debtor(
            kind=kind,
            first_name=first_name if kind == "consumer" else "",
            last_name=last_name if kind == "consumer" else "",
            company_name=company_name,
            match_key=match_key(kind, name, postal_code),
            addresses=[
                Address(line1="1 Main St", city="Town", state=state, postal_code=postal_code)
            ],
            phones=[Phone(number=phone, type="mobile")] if phone else [],
            emails=[Email(address=email)] if email else [],
        )
        db_session.add(debtor)
        make.count += 1
        reference = next_references(db_session, referred_on)[0]
        case = open_case(
            db_session,
            client=client,
            debtor=debtor,
            reference=reference,
            account_number=account_number or f"A-{make.count:05d}",
            referred_on=referred_on,
            due_date=referred_on - dt.timedelta(days=days_past_due),
            actor=TEST_ACTOR,
        )
        for component, amount in (("principal", principal), ("interest", interest), ("fees", fees)):
            if amount:
                post_placement(
                    db_session,
                    case,
                    component,
                    amount,
                    f"test:{reference}:{component}",
                    referred_on,
                )
        if status != "new":
            case.status = status  # a fixture shortcut; lifecycle tests use change_status
            case.close_reason = close_reason or ("recalled" if status == "closed" else None)
            case.open_account_number = case.account_number if case.is_open else None
        db_session.flush()
        return case

    make.count = 0
    return make


def notice_mailed(case: Case, on: dt.date = dt.date(2026, 10, 1)) -> Case:
    """A fixture shortcut: the case's validation notice was mailed on `on` (by default long
    enough before the suite's day that its validation period is over)."""
    case.validation_sent_at = dt.datetime.combine(on, dt.time(12), tzinfo=dt.UTC)
    case.validation_mailed_on = on
    case.validation_period_ends_on = validation_period_end(on)
    return case


@pytest.fixture
def login(client):
    def do(user: User, password=PASSWORD):
        page = client.get("/login")
        token = csrf_from(page)
        response = client.post(
            "/login", data={"email": user.email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    return do


@pytest.fixture
def api_token(db_session):
    def make(user: User, scope: str = "write", days: int = 90) -> dict:
        token = issue_token(
            db_session, user, actor=TEST_ACTOR, scope=scope, lifetime=dt.timedelta(days=days)
        )
        db_session.flush()
        return {"Authorization": f"Bearer {token}"}

    return make


def csrf_from(response) -> str:
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', response.get_data(as_text=True))
    assert tag, "no CSRF token on the page"
    return re.search(r'value="([^"]+)"', tag.group(0)).group(1)


class _Inbox:
    """What a local SMTP server received."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server(app):
    """A real SMTP server on 127.0.0.1 for the app to send to; yields its inbox."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    before = (app.config["MAIL_SERVER"], app.config["MAIL_PORT"])
    app.config["MAIL_SERVER"], app.config["MAIL_PORT"] = "127.0.0.1", controller.port
    try:
        yield inbox
    finally:
        app.config["MAIL_SERVER"], app.config["MAIL_PORT"] = before
        controller.stop()


def drain_jobs(app, queues: tuple[str, ...] | None = None) -> None:
    """Run whatever is queued (on `queues`, or all): in-process jobs already ran; RQ jobs run
    in a burst worker."""
    from rq import SimpleWorker

    from cases.jobs import QUEUES
    from shell.job_runner import RQRunner

    runner = app.extensions["recourse.jobs"]
    if isinstance(runner, RQRunner):
        queues = [runner.queue(name) for name in queues or QUEUES]
        SimpleWorker(queues, connection=runner.connection).work(burst=True)


def portal_sign_in(client, reference, name="Garcia", postal_code="10001"):
    page = client.get("/portal/login")
    return client.post(
        "/portal/login",
        data={
            "reference": reference,
            "name": name,
            "postal_code": postal_code,
            "csrf_token": csrf_from(page),
        },
    )


@pytest.fixture
def signed_in(client):
    """Sign the test client in to the portal on a case (its debtor's last name and ZIP)."""

    def do(case):
        debtor = case.debtor
        name = debtor.company_name if debtor.kind == "commercial" else debtor.last_name
        response = portal_sign_in(client, case.reference, name, debtor.addresses[0].postal_code)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return do


class FakeSms:
    """A text-message provider on 127.0.0.1 that records what it is asked to send."""

    def __init__(self):
        self.messages: list[dict] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                length = int(self.headers["Content-Length"])
                message = json.loads(self.rfile.read(length))
                message["authorization"] = self.headers["Authorization"]
                received.append(message)
                answer = json.dumps({"id": f"sms-{len(received)}"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sms_server(app):
    fake = FakeSms()
    before = (app.config["SMS_API_URL"], app.config["SMS_API_KEY"])
    app.config["SMS_API_URL"], app.config["SMS_API_KEY"] = fake.url, "test-sms-key"
    try:
        yield fake
    finally:
        app.config["SMS_API_URL"], app.config["SMS_API_KEY"] = before
        fake.stop()
