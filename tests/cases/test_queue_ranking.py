"""The queue's ranking, read as short ranges (cases.queue.ranked_page), is the order the whole
book sorted by bucket, time without contact, referral and id gives: on every page, with each
filter and with cases held back, and again after the writes that move a case."""

import datetime as dt

import pytest
import sqlalchemy as sa

from cases.case import WORKED_STATUSES, Case
from cases.plans import PaymentPlan, PromiseToPay
from cases.queue import FILTER_BUCKETS, ranked_page

TODAY = dt.date(2026, 11, 23)
CONTACTED = [dt.datetime(2026, 11, d, 15, tzinfo=dt.UTC) for d in (2, 9, 9, 16)]


def whole_book_order(collector_id: int, buckets=(), exclude=(), today=TODAY) -> sa.Select:
    """The ranking as one sort of the collector's whole book (what the queue did before), read
    from the promises and plans themselves (not from `cases.chase_from`)."""
    promise_today = Case.id.in_(
        sa.select(PromiseToPay.case_id).where(
            PromiseToPay.status == "open", PromiseToPay.due_on == today
        )
    )
    broken = sa.or_(
        Case.id.in_(
            sa.select(PromiseToPay.case_id).where(
                PromiseToPay.status.in_(("open", "broken")), PromiseToPay.due_on < today
            )
        ),
        Case.id.in_(sa.select(PaymentPlan.case_id).where(PaymentPlan.status == "broken")),
    )
    bucket = sa.case(
        (promise_today, 0),
        (broken, 1),
        (sa.or_(Case.status == "new", Case.last_contact_at.is_(None)), 2),
        else_=3,
    )
    query = sa.select(Case.id, bucket.label("bucket")).where(
        Case.assigned_to_id == collector_id,
        Case.status.in_(WORKED_STATUSES),
        Case.program == "collection",
    )
    if buckets:
        query = query.where(bucket.in_(buckets))
    if exclude:
        query = query.where(Case.id.not_in(list(exclude)))
    return query.order_by(
        bucket, Case.last_contact_at.asc().nulls_first(), Case.referred_on.asc(), Case.id
    )


@pytest.fixture
def book(db_session, make_user, make_client, make_case):
    """A collector's 48 cases in every state the ranking tells apart, ties included, and
    another collector's, an early-out account and a disputed case beside them."""
    collector, other = make_user("collector"), make_user("collector")
    acme = make_client()
    cases = []
    for i in range(48):
        status = ("new", "active", "plan", "active")[i % 4]
        case = make_case(
            acme, status=status, referred_on=dt.date(2026, 11, 1 + i % 3), last_name=f"N{i}"
        )
        case.assigned_to_id = collector.id
        case.last_contact_at = None if i % 5 == 0 else CONTACTED[i % 4]
        cases.append(case)
    for status in ("active", "disputed"):
        make_case(acme, status=status).assigned_to_id = collector.id
    make_case(acme, status="active").assigned_to_id = other.id
    early = make_case(acme, status="active")
    early.assigned_to_id, early.program = collector.id, "early_out"
    promises = [
        (cases[3], TODAY, "open"),  # due today
        (cases[7], TODAY, "open"),
        (cases[11], TODAY - dt.timedelta(days=3), "open"),  # overdue
        (cases[15], TODAY - dt.timedelta(days=9), "broken"),
        (cases[15], TODAY, "open"),  # broken before, due again today: today's comes first
        (cases[19], TODAY - dt.timedelta(days=9), "kept"),  # nothing to chase
        (cases[23], TODAY + dt.timedelta(days=4), "open"),  # not yet due
    ]
    for case, due_on, status in promises:
        db_session.add(
            PromiseToPay(case_id=case.id, amount_cents=1000, due_on=due_on, status=status)
        )
    for case, status in ((cases[26], "broken"), (cases[11], "broken"), (cases[30], "active")):
        db_session.add(
            PaymentPlan(case_id=case.id, total_cents=5000, frequency="monthly", status=status)
        )
    db_session.flush()
    return collector, cases


def assert_same_order(session, collector_id, buckets=(), exclude=(), today=TODAY):
    session.flush()
    expected = session.execute(whole_book_order(collector_id, buckets, exclude, today)).all()
    assert len(expected) > 0
    for page in (5, 10, 50):
        for offset in range(0, len(expected) + page, page):
            found = ranked_page(
                session, collector_id, today, buckets, exclude, offset=offset, size=page
            )
            assert [tuple(r) for r in found] == [
                tuple(r) for r in expected[offset : offset + page]
            ], (page, offset)
    return expected


def test_every_page_of_the_ranking_is_the_whole_books_order(db_session, book):
    collector, cases = book
    ranked = assert_same_order(db_session, collector.id)
    assert len(ranked) == 49  # the worked collection cases: not disputed, early-out, another's
    assert [bucket for _, bucket in ranked[:5]] == [0, 0, 0, 1, 1]
    for buckets in (*FILTER_BUCKETS.values(), (0,), (1,), (1, 3)):
        assert_same_order(db_session, collector.id, buckets)
    assert_same_order(db_session, collector.id, exclude=[cases[3].id, cases[0].id, cases[9].id])


def test_the_ranking_follows_the_writes_that_move_a_case(db_session, book):
    collector, cases = book
    # A call: the case moves down its bucket, or out of "never contacted".
    cases[0].last_contact_at = dt.datetime(2026, 11, 23, 14, tzinfo=dt.UTC)
    cases[5].last_contact_at = CONTACTED[2]  # ties with others on the time: by referral, id
    # A new case's notice goes out: it leaves bucket 2 unless never contacted.
    cases[4].status, cases[8].status = "active", "active"
    # A promise kept, one broken, a plan broken, a plan put right.
    for promise in db_session.scalars(
        sa.select(PromiseToPay).where(PromiseToPay.case_id.in_([cases[7].id, cases[11].id]))
    ):
        promise.status = "kept" if promise.case_id == cases[7].id else "broken"
    db_session.add(
        PaymentPlan(case_id=cases[34].id, total_cents=5000, frequency="monthly", status="broken")
    )
    for plan in db_session.scalars(
        sa.select(PaymentPlan).where(PaymentPlan.case_id == cases[26].id)
    ):
        plan.status = "active"
    # Cases leave the queue: paid, disputed, handed to another collector, early-out.
    cases[12].status = "paid"
    cases[13].status = "disputed"
    cases[14].assigned_to_id = None
    cases[17].program = "early_out"
    db_session.flush()
    ranked = assert_same_order(db_session, collector.id)
    assert len(ranked) == 45
    for buckets in FILTER_BUCKETS.values():
        assert_same_order(db_session, collector.id, buckets)


def assert_every_day_same_order(session, collector_id):
    """The order on the book's "today" and on the days around it (a promise due in two days
    is bucket 0 then, a broken one's day after counts from the next day)."""
    for days in (-10, -3, -1, 0, 1, 2, 5, 30):
        assert_same_order(session, collector_id, today=TODAY + dt.timedelta(days=days))
    for buckets in FILTER_BUCKETS.values():
        assert_same_order(session, collector_id, buckets)


def test_the_ranking_follows_every_promise_and_plan_writer(db_session, book):
    """Each way a promise or plan changes, through the functions that change it: the queue
    (which reads `cases.chase_from`) keeps the whole book's order read from them."""
    from cases.plans import break_plan, create_plan, record_promise
    from cases.reminders import check_promises
    from payments.autopay import charge_due
    from payments.posting import post_payment
    from tests.conftest import TEST_ACTOR

    collector, cases = book
    assert_every_day_same_order(db_session, collector.id)
    # Promises recorded: due today, due in two days (bucket 0 then, 1 after).
    record_promise(
        db_session, cases[1], amount_cents=2500, due_on=TODAY, today=TODAY, actor=TEST_ACTOR
    )
    record_promise(
        db_session,
        cases[5],
        amount_cents=2500,
        due_on=TODAY + dt.timedelta(days=2),
        today=TODAY,
        actor=TEST_ACTOR,
    )
    assert_every_day_same_order(db_session, collector.id)
    # Paid: the nightly check keeps it (cases[7]'s promise due today); the overdue one on
    # cases[11] it breaks.
    post_payment(
        db_session,
        cases[7],
        1000,
        external_id="chase-paid",
        received_at=TODAY,
        method="check",
        actor=TEST_ACTOR,
        today=TODAY,
    )
    settled = check_promises(db_session, today=TODAY, zone=dt.UTC, actor=TEST_ACTOR)
    assert len(settled["kept"]) == 1 and len(settled["broken"]) == 1
    assert_every_day_same_order(db_session, collector.id)
    # A plan set up on an active case, then broken; another broken by the nightly charge run
    # (an installment 10 days late: a failed autopay's plan breaks so).
    plans = []
    for case in (cases[9], cases[21]):
        plans.append(
            create_plan(
                db_session,
                case,
                frequency="monthly",
                count=2,
                first_on=TODAY,
                today=TODAY,
                actor=TEST_ACTOR,
            )
        )
    assert_every_day_same_order(db_session, collector.id)
    assert break_plan(db_session, plans[0], actor=TEST_ACTOR, reason="test")
    assert_every_day_same_order(db_session, collector.id)
    run = charge_due(db_session, None, today=TODAY + dt.timedelta(days=10), zone=dt.UTC)
    assert run.broken == [plans[1].id]
    assert_every_day_same_order(db_session, collector.id)
    # A broken plan put right, another cancelled, another deleted; a promise deleted, one
    # moved to another case, one's date moved.
    plans[0].status = "active"
    assert_every_day_same_order(db_session, collector.id)
    plans[1].status = "cancelled"
    assert_every_day_same_order(db_session, collector.id)
    for plan in db_session.scalars(
        sa.select(PaymentPlan).where(PaymentPlan.case_id == cases[26].id)
    ):
        db_session.delete(plan)
    assert_every_day_same_order(db_session, collector.id)
    promises = {
        p.case_id: p
        for p in db_session.scalars(sa.select(PromiseToPay).where(PromiseToPay.status == "open"))
    }
    db_session.delete(promises[cases[3].id])
    promises[cases[5].id].case_id = cases[6].id
    promises[cases[23].id].due_on = TODAY - dt.timedelta(days=1)
    assert_every_day_same_order(db_session, collector.id)
