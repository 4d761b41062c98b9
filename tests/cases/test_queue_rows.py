"""The queue reads its rows as plain columns in two statements (cases.queue._candidates: the
cases with their debtors, addresses, phones and balances; cases.contact_log.histories: the
contacts and the messages still queued). What it reads must be what the cases themselves say:
the same facts for the call rules, the same balance, the same history, whatever a debtor has
several of."""

import datetime as dt

import sqlalchemy as sa
import time_machine

from bench.common import statements_run
from cases.contact_log import (
    RULES_LOOK_BACK,
    OutboundMessage,
    debtor_facts,
    history,
    record_contact,
)
from cases.debtors import Address, Phone
from cases.ledger import balance_cents
from cases.queue import queue_for
from payments.posting import post_adjustment
from tests.conftest import TEST_ACTOR

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # 10:00 in New York


def test_each_row_says_what_its_case_says(db_session, make_user, make_client, make_case):
    collector = make_user("collector")
    acme = make_client()
    # One debtor with two cases, two addresses and three phones (one opted out of calls, one
    # a wrong number); one with no phone at all; one plain.
    shared = make_case(acme, status="active", principal=120_000, postal_code="10001")
    debtor = shared.debtor
    debtor.addresses.append(
        Address(line1="2 Bay St", city="San Francisco", state="CA", postal_code="94103")
    )
    debtor.phones += [
        Phone(number="+14155550101", type="home", calls_opted_out_at=NOW - dt.timedelta(days=3)),
        Phone(number="+13125550102", type="work", wrong_number_at=NOW - dt.timedelta(days=9)),
    ]
    second = make_case(acme, status="active", principal=40_000)
    second.debtor = debtor
    no_phone = make_case(acme, status="new", principal=7_500, phone=None, last_name="Quiet")
    plain = make_case(acme, status="active", principal=99_900, last_name="Plain")
    cases = [shared, second, no_phone, plain]
    for case in cases:
        case.assigned_to_id = collector.id
    db_session.flush()
    post_adjustment(
        db_session,
        shared,
        -2_500,
        reason="courtesy credit",
        received_at=dt.date(2026, 11, 20),
        actor=TEST_ACTOR,
    )
    # Contacts in the look-back and before it, and a text still waiting in the outbox.
    with time_machine.travel(NOW, tick=False):
        for days, outcome in ((2, "no_answer"), (30, "conversation")):
            record_contact(
                db_session,
                shared,
                channel="call",
                direction="outbound",
                outcome=outcome,
                occurred_at=NOW - dt.timedelta(days=days),
                target="+12125550100",
                actor=TEST_ACTOR,
            )
    db_session.add(
        OutboundMessage(
            case_id=plain.id,
            channel="text",
            to_address="+12125550100",
            subject="",
            body="Please call us",
            status="queued",
            created_at=NOW - dt.timedelta(hours=1),
        )
    )
    db_session.flush()

    with statements_run(db_session.get_bind()) as seen:
        rows = queue_for(db_session, collector.id, now=NOW, today=NOW.date(), limit=10)
    assert len(seen) == 3  # the ranking, the cases with all they need, the histories

    assert sorted(r.case.id for r in rows) == sorted(c.id for c in cases)
    for row in rows:
        case = next(c for c in cases if c.id == row.case.id)
        db_session.refresh(case)
        assert row.balance_cents == balance_cents(db_session, case.id)
        assert row.facts == debtor_facts(case)
        recent = [p for p in history(db_session, case.id) if p.occurred_at >= NOW - RULES_LOOK_BACK]
        assert row.history == recent
        shown = row.case.debtor
        assert [(a.postal_code, a.state) for a in shown.addresses] == [
            (a.postal_code, a.state) for a in sorted(case.debtor.addresses, key=lambda a: a.id)
        ]
        assert [p.number for p in shown.phones] == [
            p.number for p in sorted(case.debtor.phones, key=lambda p: p.id)
        ]
    by_id = {r.case.id: r for r in rows}
    assert by_id[shared.id].balance_cents == 117_500
    assert len(by_id[shared.id].case.debtor.phones) == 3  # the case's own and the two added
    assert by_id[shared.id].case.debtor is by_id[second.id].case.debtor
    assert by_id[no_phone.id].case.debtor.phones == []
    # Waiting in the outbox, the text counts: as an outbound contact, at the time it was queued.
    assert [tuple(vars(p).values()) for p in by_id[plain.id].history] == [
        ("text", "outbound", None, NOW - dt.timedelta(hours=1), "+12125550100")
    ]
    assert [p.outcome for p in by_id[shared.id].history] == ["no_answer"]  # 30 days is past
    assert db_session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 1


def test_an_empty_queue_is_one_statement(db_session, make_user, make_client, make_case):
    idle = make_user("collector")
    make_case(make_client(), status="active")  # nobody's: not in the queue
    db_session.flush()
    with statements_run(db_session.get_bind()) as seen:
        assert queue_for(db_session, idle.id, now=NOW, today=NOW.date()) == []
    assert len(seen) == 1
