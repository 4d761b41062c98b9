"""Codes racing on PostgreSQL in real threads: a code is accepted once however many requests
send it at once, and concurrent bad codes get no more tries than the limit (cases.second_factor
locks the user's row before it counts)."""

from __future__ import annotations

import threading

import pyotp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy import orm

from cases import audit
from cases.audit import AuditEvent
from cases.model import utcnow
from cases.second_factor import (
    RecoveryCode,
    SecondFactorError,
    TooManyCodes,
    check_code,
    confirm_enrolment,
    pending_secret,
)
from cases.sign_in_limits import SignInAttempt
from cases.users import User, create_user
from shell.extensions import db

ACTOR = audit.Actor(None, "race")
KEY = Fernet.generate_key().decode()


@pytest.fixture
def committed_user(app, database_url):
    """An enrolled user committed for real (the threads need to see it), removed afterwards."""
    if not database_url.startswith("postgres"):
        pytest.skip("row locks under real concurrency are a PostgreSQL matter")
    with app.app_context():
        engine = db.engine
    Session = orm.sessionmaker(bind=engine)
    with Session() as session:
        user = create_user(session, "race@agency.test", "a-long-password", "collector", actor=ACTOR)
        totp = pyotp.TOTP(pending_secret(session, user, KEY))
        confirm_enrolment(session, user, KEY, totp.now(), actor=ACTOR)
        session.commit()
        user_id = user.id
    yield Session, user_id, totp
    with engine.begin() as conn:  # Core deletes: the append-only guards are ORM-level
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.entity_id == str(user_id)))
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.actor_user_id == user_id))
        conn.execute(sa.delete(SignInAttempt).where(SignInAttempt.key == f"mfa:user:{user_id}"))
        conn.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        conn.execute(sa.delete(User).where(User.id == user_id))


def at_once(Session, user_id, codes) -> list[str]:
    outcomes: list[str] = []
    barrier = threading.Barrier(len(codes), timeout=30)

    def worker(code):
        with Session() as session:
            user = session.get(User, user_id)
            barrier.wait()
            try:
                check_code(session, user, KEY, code)
                outcomes.append("accepted")
            except TooManyCodes:
                outcomes.append("too many")
            except SecondFactorError as exc:
                outcomes.append(str(exc))
            session.commit()  # a refused code's failure is kept, as the page keeps it

    threads = [threading.Thread(target=worker, args=(c,)) for c in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_one_code_sent_eight_times_at_once_is_accepted_once(committed_user):
    Session, user_id, totp = committed_user
    # The code of the next step: enrolment used the current one.
    code = totp.at(utcnow(), counter_offset=1)
    outcomes = at_once(Session, user_id, [code] * 8)
    assert outcomes.count("accepted") == 1, outcomes
    # The others are refused; a replayed code counts as a bad one, so after five the rest are
    # refused by the limit.
    used = outcomes.count("That code was used already. Wait for the next one.")
    assert used == 5 and outcomes.count("too many") == 2, outcomes


def test_twelve_bad_codes_at_once_get_five_tries(committed_user):
    # Twelve threads: each holds a connection of the pool (5 + 10 overflow) at once.
    Session, user_id, _ = committed_user
    outcomes = at_once(Session, user_id, ["000000"] * 12)
    assert outcomes.count("That code is not right.") == 5, outcomes
    assert outcomes.count("too many") == 7
