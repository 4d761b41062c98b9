"""Two `plans charge-due` runs at once (two workers, or the daily job and a manual run), each
with worker processes of its own, against localstripe: every installment is charged once at
Stripe and posted once, also when all of them were left `processing` by a killed run.

Each test has a database of its own (committed data, seen by every thread and by no other
test): a fresh PostgreSQL database beside the test one, or a SQLite file."""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from agency import create_app
from cases import audit
from cases.case import Case, open_case
from cases.clients import create_client
from cases.debtors import Address, Debtor, match_key
from cases.ledger import LedgerEntry, post_placement
from cases.plans import Installment, create_plan, save_card
from payments.autopay import ChargeRun, charge_due
from payments.fees import parse_tiers, set_schedule
from payments.gateway import StripeGateway
from shell.autopay_cli import charge_due_job, worker_sessions
from shell.extensions import db
from shell.settings import database_uri
from tests.payments.conftest import SECRET_KEY
from tests.payments.test_gateway import VISA, card

ACTOR = audit.Actor(None, "race")
TODAY = dt.date(2026, 11, 23)
CASES = 12
RUNS = 2
WORKERS = 3


@pytest.fixture(params=["postgresql", "sqlite"])
def race_app(request, database_url, tmp_path) -> Iterator[Flask]:
    if request.param == "postgresql":
        if not database_url.startswith("postgres"):
            pytest.skip("needs PostgreSQL (TEST_DATABASE_URL)")
        test_db = sa.engine.make_url(database_uri(database_url))
        name = f"{test_db.database}_autopay_race"
        server = sa.create_engine(test_db.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = test_db.set(database=name).render_as_string(hide_password=False)
    else:
        server, url = None, f"sqlite:///{tmp_path / 'race.sqlite3'}"
    app = create_app({"DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": "race"})
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
    if server is not None:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def seed(app: Flask, gateway, stripe_api) -> list[str]:
    """CASES active cases, each on a monthly autopay plan whose first installment is due today,
    charging one saved Visa; their references (unique: localstripe outlives each test)."""
    customer = gateway.ensure_customer(debtor_id=uuid.uuid4().int % 10**9, name="R Ace", email=None)
    payment_method = card(stripe_api, VISA, customer)
    references = []
    with app.app_context():
        session = db.session
        client = create_client(session, "RACE", "Race Co", actor=ACTOR)
        set_schedule(session, client, parse_tiers("90=2500"), actor=ACTOR)
        for n in range(CASES):
            debtor = Debtor(
                kind="consumer",
                first_name="R",
                last_name=f"Ace {n}",
                match_key=match_key("consumer", f"R Ace {n}", "10001"),
                addresses=[Address(state="NY", postal_code="10001")],
            )
            session.add(debtor)
            case = open_case(
                session,
                client=client,
                debtor=debtor,
                reference=f"RC-R{uuid.uuid4().hex[:12].upper()}",
                account_number=f"RACE-{n}",
                referred_on=dt.date(2026, 11, 1),
                due_date=dt.date(2026, 6, 1),
                actor=ACTOR,
            )
            post_placement(session, case, "principal", 100_000, f"race:{n}", TODAY)
            case.status = "active"
            plan = create_plan(
                session,
                case,
                frequency="monthly",
                count=4,
                first_on=TODAY,
                today=TODAY,
                actor=ACTOR,
                autopay=True,
            )
            save_card(
                session,
                plan,
                customer_id=customer,
                payment_method_id=payment_method,
                actor=ACTOR,
            )
            references.append(case.reference)
        session.commit()
    return references


def charge_with_workers(app: Flask, gateway, workers: int) -> ChargeRun:
    """One charge run, in the app's context, as `plans charge-due --workers N` makes it."""
    return charge_due(
        db.session,
        gateway,
        today=TODAY,
        zone=dt.UTC,
        workers=workers,
        worker_session=worker_sessions(app),
    )


def race(app: Flask, gateway) -> list[ChargeRun]:
    """RUNS charge runs started together, each with WORKERS worker processes."""
    barrier, runs, errors = threading.Barrier(RUNS), [], []

    def one_run() -> None:
        with app.app_context():
            barrier.wait()
            try:
                runs.append(charge_with_workers(app, gateway, WORKERS))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one_run) for _ in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    return runs


def assert_each_charged_once(app: Flask, gateway, references: list[str], runs=None) -> None:
    for reference in references:
        intents = gateway.find_payment_intents(case_reference=reference)
        assert [i.status for i in intents] == ["succeeded"], reference
    if runs is not None:
        assert sum(len(run.charged) for run in runs) == CASES
    with app.app_context():
        firsts = db.session.scalars(sa.select(Installment).where(Installment.seq == 1)).all()
        assert sorted((i.status, i.attempts) for i in firsts) == [("paid", 1)] * CASES
        payments = db.session.scalars(
            sa.select(LedgerEntry.case_id).where(LedgerEntry.kind == "payment")
        ).all()
        assert sorted(payments) == sorted(db.session.scalars(sa.select(Case.id)).all())


def test_two_runs_at_once_charge_each_installment_once(race_app, gateway, stripe_api):
    references = seed(race_app, gateway, stripe_api)

    runs = race(race_app, gateway)

    assert_each_charged_once(race_app, gateway, references, runs)


def test_two_runs_reconciling_the_same_interrupted_installments_charge_each_once(
    race_app, gateway, stripe_api
):
    """A killed run left every installment `processing` with its attempt's key on record: half
    of them charged at Stripe before it died, half not yet. Both runs find them all."""
    references = seed(race_app, gateway, stripe_api)
    with race_app.app_context():
        session = db.session
        firsts = session.scalars(
            sa.select(Installment).where(Installment.seq == 1).order_by(Installment.id)
        ).all()
        for installment in firsts:
            installment.status, installment.attempts = "processing", 1
        session.commit()
        for installment in firsts[::2]:
            plan = installment.plan
            gateway.charge_off_session(
                amount_cents=installment.amount_cents,
                customer_id=plan.stripe_customer_id,
                payment_method_id=plan.stripe_payment_method_id,
                case_reference=session.get(Case, plan.case_id).reference,
                idempotency_key=installment.idempotency_key,
                metadata={"installment_id": str(installment.id), "source": "autopay"},
            )

    runs = race(race_app, gateway)

    assert_each_charged_once(race_app, gateway, references, runs)


class DiesAfterCharging(StripeGateway):
    """In a worker process: dies, as if killed, right after Stripe took its third charge and
    before the worker could record it."""

    def charge_off_session(self, **charge):
        intent = super().charge_off_session(**charge)
        self.charges = getattr(self, "charges", 0) + 1
        if self.charges == 3:
            os._exit(1)
        return intent


def test_a_worker_process_killed_mid_batch_leaves_nothing_to_charge_twice(
    race_app, gateway, stripe_api, localstripe_url
):
    references = seed(race_app, gateway, stripe_api)
    dying = DiesAfterCharging(SECRET_KEY, "whsec_test", api_base=localstripe_url)
    with race_app.app_context():
        with pytest.raises(BrokenProcessPool):
            charge_with_workers(race_app, dying, 2)
        db.session.remove()
        left = db.session.scalars(
            sa.select(Installment.id).where(Installment.status == "processing")
        ).all()
        assert len(left) >= 3  # the dead worker's batch, of which Stripe charged three
        rerun = charge_with_workers(race_app, gateway, 2)
        db.session.remove()
    assert set(left) <= set(rerun.charged)
    assert_each_charged_once(race_app, gateway, references)


def with_stripe(race_app: Flask, localstripe_url: str, **settings) -> Flask:
    """The race app's database, with Stripe configured as the command and the job find it."""
    return create_app(
        {
            **race_app.config,
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_API_BASE": localstripe_url,
            **settings,
        }
    )


def test_the_daily_job_charges_with_autopay_workers_processes(
    race_app, gateway, stripe_api, localstripe_url
):
    references = seed(race_app, gateway, stripe_api)
    app = with_stripe(race_app, localstripe_url, AUTOPAY_WORKERS="3")
    try:
        with app.app_context():
            run = charge_due_job(db.session, TODAY.isoformat())
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
    finally:
        with app.app_context():
            db.engine.dispose()
    assert len(run.charged) == CASES
    assert_each_charged_once(race_app, gateway, references, [run])


def test_the_command_charges_with_worker_processes(race_app, gateway, stripe_api, localstripe_url):
    references = seed(race_app, gateway, stripe_api)
    app = with_stripe(race_app, localstripe_url)
    try:
        args = ["plans", "charge-due", "--as-of", TODAY.isoformat(), "--workers", "3"]
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 0, result.output
        assert f"{TODAY}: {CASES} charged, 0 failed" in result.output
        again = app.test_cli_runner().invoke(args=args)
        assert f"{TODAY}: 0 charged, 0 failed" in again.output
    finally:
        with app.app_context():
            db.engine.dispose()
    assert_each_charged_once(race_app, gateway, references)


def test_worker_processes_on_an_in_memory_database_are_refused(gateway):
    app = create_app({"DATABASE_URL": "sqlite://", "REDIS_URL": "", "SECRET_KEY": "mem"})
    with app.app_context():
        upgrade()
        with pytest.raises(ValueError, match="cannot share an in-memory SQLite database"):
            charge_with_workers(app, gateway, 2)
        result = app.test_cli_runner().invoke(
            args=["plans", "charge-due", "--as-of", TODAY.isoformat(), "--workers", "2"]
        )
        assert result.exit_code == 1
        assert "cannot share an in-memory SQLite database" in result.output
