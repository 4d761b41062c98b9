"""The queue's ranking, read as short ranges (cases.queue._ranked), is the order the whole
book sorted by bucket, time without contact, referral and id gives: on every page, with each
filter and with cases held back, and again after the writes that move a case."""

import datetime as dt

import pytest
import sqlalchemy as sa

from cases.case import WORKED_STATUSES, Case
from cases.plans import PaymentPlan, PromiseToPay
from cases.queue import FILTER_BUCKETS, _ranked

TODAY = dt.date(2026, 11, 23)
CONTACTED = [dt.datetime(2026, 11, d, 15, tzinfo=dt.UTC) for d in (2, 9, 9, 16)]


def whole_book_order(collector_id: int, buckets=(), exclude=()) -> sa.Select:
    """The ranking as one sort of the collector's whole book (what the queue did before)."""
    promise_today = Case.id.in_(
        sa.select(PromiseToPay.case_id).where(
            PromiseToPay.status == "open", PromiseToPay.due_on == TODAY
        )
    )
    broken = sa.or_(
        Case.id.in_(
            sa.select(PromiseToPay.case_id).where(
                PromiseToPay.status.in_(("open", "broken")), PromiseToPay.due_on < TODAY
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


def assert_same_order(session, collector_id, buckets=(), exclude=()):
    expected = session.execute(whole_book_order(collector_id, buckets, exclude)).all()
    assert len(expected) > 0
    for page in (5, 10, 50):
        for offset in range(0, len(expected) + page, page):
            ranked = _ranked(collector_id, TODAY, buckets, exclude, upto=offset + page)
            found = session.execute(ranked.limit(page).offset(offset)).all()
            assert [tuple(r) for r in found] == [
                tuple(r) for r in expected[offset : offset + page]
            ], (page, offset)
    return expected


def test_every_page_of_the_ranking_is_the_whole_books_order(db_session, book):
    collector, cases = book
    ranked = assert_same_order(db_session, collector.id)
    assert len(ranked) == 49  # the worked collection cases: not disputed, early-out, another's
    assert [bucket for _, bucket in ranked[:5]] == [0, 0, 0, 1, 1]
    for buckets in FILTER_BUCKETS.values():
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
