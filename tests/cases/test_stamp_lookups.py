"""A commit stamps the cases it changed by id, by their plans and by their debtors
(cases.stamps.touch): exactly those cases, each looked up by an index. An OR of the three would
read the whole book on PostgreSQL at every commit that changed a plan or a debtor."""

import pytest
import sqlalchemy as sa

from bench.nightly import Statements, explain, seq_scans
from cases import stamps
from cases.case import Case


def _stamps(session, cases) -> dict[int, int]:
    return dict(session.execute(sa.select(Case.id, Case.stamp).where(Case.id.in_(cases))).all())


@pytest.mark.parametrize("by", ["ids", "debtors", "ids and debtors"])
def test_touch_stamps_exactly_the_cases_it_is_given(db_session, make_client, make_case, by):
    client = make_client()
    a, b, c = (make_case(client, last_name=name) for name in ("Ames", "Bell", "Cole"))
    c.debtor = b.debtor  # b and c: one debtor
    db_session.flush()
    ids = [a.id, b.id, c.id]
    before = _stamps(db_session, ids)
    if by == "ids":
        stamps.touch(db_session, case_ids=[a.id])
        changed = {a.id}
    elif by == "debtors":
        stamps.touch(db_session, debtor_ids=[b.debtor_id])
        changed = {b.id, c.id}
    else:
        stamps.touch(db_session, case_ids=[a.id], debtor_ids=[b.debtor_id])
        changed = {a.id, b.id, c.id}
    after = _stamps(db_session, ids)
    assert {i for i in ids if after[i] != before[i]} == changed


@pytest.mark.parametrize(
    "given",
    [
        {"case_ids": [1, 2], "plan_ids": [3]},
        {"plan_ids": [3, 4]},
        {"debtor_ids": [5]},
        {"case_ids": [1], "plan_ids": [3], "debtor_ids": [5]},
    ],
)
def test_touch_looks_each_case_up_by_an_index_on_postgresql(db_session, given):
    connection = db_session.connection()
    if connection.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    log = Statements(connection.engine)
    with log.capture():
        stamps.touch(db_session, **given)
    ((statement, parameters),) = [(s, p) for s, p in log.seen if s.startswith("UPDATE cases")]
    plan = explain(connection, statement, parameters, seqscan=False)
    assert not seq_scans(plan, ("cases", "payment_plans")), plan
