"""Assigning cases by hand and spreading new ones across collectors."""

import pytest

from cases import audit
from cases.assignment import AssignmentError, assign, round_robin

ACTOR = audit.Actor(None, "test")


def test_round_robin_evens_out_the_load(db_session, make_user, make_client, make_case):
    busy, idle = make_user("collector"), make_user("collector")
    make_user("collector").active = False  # inactive collectors get nothing
    acme = make_client()
    for _ in range(3):
        make_case(acme, status="active").assigned_to_id = busy.id
    new = [make_case(acme) for _ in range(5)]
    make_case(acme, status="closed")  # closed cases are not dealt out
    given = round_robin(db_session, actor=ACTOR)
    assert given == {busy.id: 1, idle.id: 4}
    assert sorted(c.assigned_to_id for c in new) == sorted([busy.id] + [idle.id] * 4)


def test_assign_by_hand_and_refusals(db_session, make_user, make_client, make_case):
    collector = make_user("collector")
    case = make_case(make_client())
    assert assign(db_session, [case.id], collector.id, actor=ACTOR) == 1
    assert case.assigned_to_id == collector.id
    with pytest.raises(AssignmentError, match="active collector"):
        assign(db_session, [case.id], make_user("client", client=case.client).id, actor=ACTOR)
    with pytest.raises(AssignmentError, match="at least one case"):
        assign(db_session, [], collector.id, actor=ACTOR)


def test_round_robin_needs_a_collector(db_session, make_client, make_case):
    make_case(make_client())
    with pytest.raises(AssignmentError, match="no active collector"):
        round_robin(db_session, actor=ACTOR)
