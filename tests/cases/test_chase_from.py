"""`cases.chase_from` (cases/chase.py) is its definition after any sequence of writes to
promises and plans, it puts a case in the queue's first two buckets on exactly the days the
promises and plans do, nothing writes promises or plans around the hook that keeps it, and on
PostgreSQL the queue reads those buckets from its index."""

import datetime as dt
import random
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from cases.case import Case
from cases.chase import BROKEN_PLAN, chase_from_of
from cases.plans import PaymentPlan, PromiseToPay
from cases.queue import _ranking
from tests.cases.test_queue_ranking import TODAY, whole_book_order

ROOT = Path(__file__).parent.parent.parent


def defined(session, case_ids) -> dict[int, dt.date | None]:
    """Each case's chase_from by its definition, in Python from the rows."""
    days: dict[int, list[dt.date]] = {case_id: [] for case_id in case_ids}
    for case_id, status, due_on in session.execute(
        sa.select(PromiseToPay.case_id, PromiseToPay.status, PromiseToPay.due_on)
    ):
        if case_id in days and status == "open":
            days[case_id].append(due_on)
        elif case_id in days and status == "broken":
            days[case_id].append(due_on + dt.timedelta(days=1))
    for case_id, status in session.execute(sa.select(PaymentPlan.case_id, PaymentPlan.status)):
        if case_id in days and status == "broken":
            days[case_id].append(BROKEN_PLAN)
    return {case_id: min(found) if found else None for case_id, found in days.items()}


def assert_kept(session, collector_id, case_ids):
    session.flush()
    stored = dict(
        session.execute(sa.select(Case.id, Case.chase_from).where(Case.id.in_(case_ids))).all()
    )
    assert stored == defined(session, case_ids)
    # The same recomputed in SQL, by the statement the hook and the benchmarks' fill run.
    again = dict(
        session.execute(
            sa.select(Case.id, chase_from_of(Case.id)).where(Case.id.in_(case_ids))
        ).all()
    )
    assert again == stored
    # And it means the buckets: chased on a day exactly when bucket 0 or 1 on that day.
    for days in range(-12, 13, 3):
        today = TODAY + dt.timedelta(days=days)
        buckets = dict(session.execute(whole_book_order(collector_id, today=today)).all())
        for case_id in case_ids:
            chased = stored[case_id] is not None and stored[case_id] <= today
            assert chased == (buckets[case_id] in (0, 1)), (case_id, today)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chase_from_is_its_definition_after_random_writes(
    db_session, make_user, make_client, make_case, seed
):
    rng = random.Random(seed)
    collector = make_user("collector")
    client = make_client()
    cases = []
    for i in range(8):
        case = make_case(client, status="active", last_name=f"R{i}")
        case.assigned_to_id = collector.id
        cases.append(case)
    ids = [case.id for case in cases]
    promises: list[PromiseToPay] = []
    plans: list[PaymentPlan] = []

    def day():
        return TODAY + dt.timedelta(days=rng.randint(-8, 8))

    for _ in range(120):
        move = rng.choice(("promise", "promise", "plan", "status", "date", "case", "delete"))
        if move == "promise" or not promises:
            promise = PromiseToPay(
                case_id=rng.choice(ids),
                amount_cents=1000,
                due_on=day(),
                status=rng.choice(("open", "open", "kept", "broken")),
            )
            db_session.add(promise)
            promises.append(promise)
        elif move == "plan" or not plans:
            plan = PaymentPlan(
                case_id=rng.choice(ids),
                total_cents=5000,
                frequency="monthly",
                status=rng.choice(("active", "broken", "completed", "cancelled")),
            )
            db_session.add(plan)
            plans.append(plan)
        elif move == "status":
            if rng.random() < 0.5:
                rng.choice(promises).status = rng.choice(("open", "kept", "broken"))
            else:
                rng.choice(plans).status = rng.choice(("active", "broken", "lapsed", "cancelled"))
        elif move == "date":
            rng.choice(promises).due_on = day()
        elif move == "case":
            rng.choice(rng.choice((promises, plans))).case_id = rng.choice(ids)
        else:
            gone = rng.choice(rng.choice((promises, plans)))
            (promises if gone in promises else plans).remove(gone)
            db_session.flush()  # written, if it was new: deleted below in the next flush
            db_session.delete(gone)
        if rng.random() < 0.4:  # several writes in one flush, or one
            db_session.flush()
        if rng.random() < 0.1:  # a commit: what was loaded is read again (expired)
            db_session.commit()
        if rng.random() < 0.15:
            assert_kept(db_session, collector.id, ids)
    assert_kept(db_session, collector.id, ids)


def test_nothing_writes_promises_or_plans_around_the_hook():
    """Bulk statements and SQL text bypass the flush hook (cases/chase.py): each must call
    `chase.refresh` itself. There are none; a new one fails here until it is listed."""
    orm = re.compile(r"sa\.(update|delete|insert)\((PromiseToPay|PaymentPlan)\b")
    text = re.compile(r"(UPDATE|DELETE FROM|INSERT INTO)\s+(promises_to_pay|payment_plans)\b", re.I)
    found = set()
    for folder in ("agency", "api", "cases", "client_area", "correspondence", "payments", "portal"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text()
            for match in (*orm.finditer(source), *text.finditer(source)):
                found.add((path.relative_to(ROOT).as_posix(), match.group(1), match.group(2)))
    assert found == set()


def test_the_chased_buckets_read_their_index_on_postgresql(
    db_session, make_user, make_client, make_case
):
    """EXPLAIN: the ranges of buckets 0 and 1 read `ix_cases_chase` (`chase_from <= today`
    for the collector), not the collector's whole book."""
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    collector = make_user("collector")
    client = make_client()
    for i in range(12):
        case = make_case(client, status="active", last_name=f"E{i}")
        case.assigned_to_id = collector.id
        if i % 3 == 0:
            db_session.add(
                PromiseToPay(case_id=case.id, amount_cents=1000, due_on=TODAY, status="open")
            )
    db_session.flush()
    connection = db_session.connection()
    # Statistics of these rows (this transaction's; rolled back with it), not of whatever the
    # suite's earlier tests left in the tables: with stale ones the planner may take any index
    # of `cases` for a dozen rows.
    connection.execute(sa.text("ANALYZE cases, promises_to_pay, payment_plans"))
    # A dozen rows: the planner would read them all in one go; ask it for its index plan.
    connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
    connection.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
    for buckets in ((0,), (1,), (0, 1)):
        query = _ranking(buckets, False).params(
            collector_id=collector.id, today=TODAY, upto=50, size=50, offset=0
        )
        compiled = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
        plan = "\n".join(connection.execute(sa.text(f"EXPLAIN {compiled}")).scalars())
        assert "ix_cases_chase" in plan, plan
        assert "ix_cases_queue" not in plan, plan


def test_chase_rebuild_puts_right_what_a_load_behind_the_apps_back_left(
    db_session, make_user, make_client, make_case, cli
):
    collector = make_user("collector")
    client = make_client()
    cases = [make_case(client, status="active", last_name=f"L{i}") for i in range(3)]
    for case in cases:
        case.assigned_to_id = collector.id
    db_session.add(PromiseToPay(case_id=cases[0].id, amount_cents=1000, due_on=TODAY))
    db_session.flush()
    connection = db_session.connection()
    # Rows written behind the app's back: a promise inserted, a case's column gone stale.
    connection.execute(
        sa.insert(PromiseToPay.__table__).values(
            case_id=cases[1].id,
            amount_cents=1000,
            due_on=TODAY,
            status="broken",
            created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        )
    )
    connection.execute(
        sa.update(Case.__table__).where(Case.id == cases[2].id).values(chase_from=TODAY)
    )
    result = cli.invoke(args=["promises", "chase-rebuild"])
    assert result.exit_code == 0, result.output
    assert "2 case(s) have a promise or plan to chase" in result.output
    db_session.expire_all()
    assert [case.chase_from for case in cases] == [TODAY, TODAY + dt.timedelta(days=1), None]
