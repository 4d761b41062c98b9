"""The embedded default: payments racing on one case on SQLite queue up; none fails."""

import datetime as dt
import threading

import pytest
from flask_migrate import upgrade

from agency import create_app
from cases import audit
from cases.case import Case, open_case
from cases.clients import create_client
from cases.debtors import Address, Debtor, match_key
from cases.ledger import post_placement
from payments.fees import parse_tiers, set_schedule
from payments.posting import DuplicatePosting, balance_cents, post_payment
from shell.extensions import db

ACTOR = audit.Actor(None, "race")


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
            "REDIS_URL": "",
            "SECRET_KEY": "race",
        }
    )
    with app.app_context():
        upgrade()
        client = create_client(db.session, "RACE", "Race Co", actor=ACTOR)
        set_schedule(db.session, client, parse_tiers("90=2500"), actor=ACTOR)
        debtor = Debtor(
            kind="consumer",
            first_name="R",
            last_name="Ace",
            match_key=match_key("consumer", "R Ace", "10001"),
            addresses=[Address(state="NY", postal_code="10001")],
        )
        db.session.add(debtor)
        case = open_case(
            db.session,
            client=client,
            debtor=debtor,
            reference="RC-9912-00001",
            account_number="RACE-1",
            referred_on=dt.date(2026, 11, 1),
            due_date=dt.date(2026, 6, 1),
            actor=ACTOR,
        )
        post_placement(
            db.session, case, "principal", 80_000, "race:principal", dt.date(2026, 11, 1)
        )
        db.session.commit()
        case_id = case.id
        db.session.remove()
    yield app, case_id
    with app.app_context():
        db.engine.dispose()


def test_payments_at_once_on_sqlite_all_post_and_duplicates_are_refused(sqlite_app):
    app, case_id = sqlite_app
    outcomes, barrier = [], threading.Barrier(8)

    def worker(n):
        with app.app_context():
            barrier.wait()  # all at once, each in its own request-like unit of work
            try:
                case = db.session.get(Case, case_id)
                post_payment(
                    db.session,
                    case,
                    10_000,
                    external_id=f"pi_{n % 4}",
                    received_at=dt.date(2026, 11, 20),
                    method="card",
                    actor=ACTOR,
                )
                db.session.commit()
                outcomes.append("posted")
            except DuplicatePosting:
                db.session.rollback()
                outcomes.append("duplicate")
            except Exception as exc:  # noqa: BLE001 - the test reports any other failure
                db.session.rollback()
                outcomes.append(f"error: {exc}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["duplicate"] * 4 + ["posted"] * 4
    with app.app_context():
        assert balance_cents(db.session, case_id) == 40_000
