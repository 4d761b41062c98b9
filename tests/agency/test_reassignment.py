"""Deactivating a collector hands their open cases over (to one collector, or round robin) in
the same unit of work; the case list filters by collector and assigns all matching cases."""

import sqlalchemy as sa

from bench.common import statements_run
from cases.audit import AuditEvent
from cases.case import Case
from tests.conftest import csrf_from


def post_form(client, path, data):
    page = client.get(path)
    return client.post(path, data={**data, "csrf_token": csrf_from(page)})


def _user_form(user, **change):
    return {
        "email": user.email,
        "name": "",
        "role": user.role,
        "client_id": "0",
        "password": "",
        **change,
    }


def _book(make_case, acme, owner, n, status="active"):
    cases = [make_case(acme, status=status, last_name=f"D{i}") for i in range(n)]
    for case in cases:
        case.assigned_to_id = owner.id
    return cases


def _owners(db_session, cases):
    db_session.expire_all()
    return [db_session.get(Case, c.id).assigned_to_id for c in cases]


def test_deactivating_asks_where_the_cases_go_and_changes_nothing_until_told(
    client, login, make_user, make_client, make_case, db_session
):
    admin, leaving, staying = make_user("admin"), make_user("collector"), make_user("collector")
    cases = _book(make_case, make_client(), leaving, 3)
    login(admin)
    page = client.get(f"/agency/users/{leaving.id}").get_data(as_text=True)
    assert "Their 3 open case(s) go to" in page and "Round robin" in page
    for choice, message in (
        ("", "say where"),
        ("nobody", "choose another active collector"),
        (str(leaving.id), "only to another active collector"),
        (str(admin.id), "only to another active collector"),
    ):
        response = post_form(
            client, f"/agency/users/{leaving.id}", _user_form(leaving, hand_over_to=choice)
        )
        assert response.status_code == 422, choice
        assert message in response.get_data(as_text=True), choice
        db_session.refresh(leaving)
        assert leaving.active
        assert _owners(db_session, cases) == [leaving.id] * 3
    response = post_form(
        client, f"/agency/users/{leaving.id}", _user_form(leaving, hand_over_to=str(staying.id))
    )
    assert response.status_code == 302
    db_session.refresh(leaving)
    assert not leaving.active
    assert _owners(db_session, cases) == [staying.id] * 3
    moved = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "case.assigned")
    ).all()
    assert sorted(e.case_id for e in moved) == sorted(c.id for c in cases)
    assert all(
        e.detail == {"from": leaving.id, "to": staying.id, "how": "hand-over"} for e in moved
    )
    assert all(e.actor_user_id == admin.id for e in moved)
    screen = client.get(f"/agency/cases/{cases[0].reference}").get_data(as_text=True)
    assert (
        f"Case assigned to {staying.email} (was {leaving.email}), handed over by a deactivation"
        in screen
    )


def test_round_robin_spreads_the_cases_least_loaded_first_in_one_statement(
    client, login, make_user, make_client, make_case, db_session, app
):
    admin, leaving = make_user("admin"), make_user("collector")
    busy, idle = make_user("collector"), make_user("collector")
    inactive = make_user("collector")
    inactive.active = False
    acme = make_client()
    _book(make_case, acme, busy, 2)
    closed = make_case(acme, status="closed")
    closed.assigned_to_id = leaving.id
    cases = _book(make_case, acme, leaving, 5)
    login(admin)
    with statements_run(db_session.get_bind().engine) as seen:
        response = post_form(
            client, f"/agency/users/{leaving.id}", _user_form(leaving, hand_over_to="round_robin")
        )
    updates = [s for s in seen if s.lstrip().upper().startswith("UPDATE CASES")]
    assert response.status_code == 302
    assert "5 open case(s) handed over to 2 collector(s)" in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    owners = _owners(db_session, cases)
    assert owners.count(idle.id) == 3 and owners.count(busy.id) == 2  # the idle one first
    assert inactive.id not in owners
    assert db_session.get(Case, closed.id).assigned_to_id == leaving.id  # closed cases stay
    assert len([u for u in updates if "assigned_to_id" in u]) == 1


def test_cases_of_an_inactive_collector_count_as_unassigned_and_the_list_filters_by_collector(
    client, login, make_user, make_client, make_case, db_session
):
    supervisor, gone, here = make_user("supervisor"), make_user("collector"), make_user("collector")
    acme = make_client()
    orphan = _book(make_case, acme, gone, 1)[0]
    kept = _book(make_case, acme, here, 1)[0]
    nobody = make_case(acme, status="active")
    gone.active = False
    db_session.flush()
    login(supervisor)
    page = client.get("/agency/cases?unassigned=1").get_data(as_text=True)
    assert orphan.reference in page and nobody.reference in page
    assert kept.reference not in page
    page = client.get(f"/agency/cases?collector={gone.id}").get_data(as_text=True)
    assert orphan.reference in page and kept.reference not in page and nobody.reference not in page
    assert f"{gone.email} (inactive)" in page
    # Round robin picks up the inactive collector's case too.
    response = post_form(client, "/agency/cases/round-robin", {})
    assert response.status_code == 302
    db_session.expire_all()
    assert db_session.get(Case, orphan.id).assigned_to_id in (here.id,)


def test_select_all_matching_assigns_every_page_of_the_filter(
    client, login, make_user, make_client, make_case, db_session
):
    supervisor, gone, here = make_user("supervisor"), make_user("collector"), make_user("collector")
    acme = make_client()
    theirs = _book(make_case, acme, gone, 55)  # more than a page (50)
    others = _book(make_case, acme, here, 2)
    gone.active = False
    db_session.flush()
    login(supervisor)
    listing = client.get(f"/agency/cases?collector={gone.id}")
    assert "55 case(s) match" in listing.get_data(as_text=True)
    response = client.post(
        "/agency/cases/assign",
        data={
            "csrf_token": csrf_from(listing),
            "all_matching": "1",
            "collector": str(gone.id),
            "q": "",
            "status": "",
            "collector_id": str(here.id),
        },
        headers={"Referer": f"/agency/cases?collector={gone.id}"},
    )
    assert response.status_code == 302
    assert "55 case(s) assigned" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert set(_owners(db_session, theirs)) == {here.id}
    assert set(_owners(db_session, others)) == {here.id}
    summary = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "cases.assigned_matching")
    ).one()
    assert summary.detail["count"] == 55 and summary.detail["filters"]["collector"] == str(gone.id)


def test_assigning_to_an_inactive_collector_or_by_a_collector_is_refused(
    client, login, make_user, make_client, make_case, db_session
):
    supervisor, gone = make_user("supervisor"), make_user("collector")
    gone.active = False
    acme = make_client()
    case = make_case(acme, status="active")
    login(supervisor)
    listing = client.get("/agency/cases")
    response = client.post(
        "/agency/cases/assign",
        data={"csrf_token": csrf_from(listing), "all_matching": "1", "collector_id": str(gone.id)},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing assigned: assign cases to an active collector or supervisor." in page
    db_session.expire_all()
    assert db_session.get(Case, case.id).assigned_to_id is None
    collector = make_user("collector")
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})
    login(collector)
    listing = client.get("/agency/cases")
    response = client.post(
        "/agency/cases/assign",
        data={
            "csrf_token": csrf_from(listing),
            "all_matching": "1",
            "collector_id": str(collector.id),
        },
    )
    assert response.status_code == 403
    db_session.expire_all()
    assert db_session.get(Case, case.id).assigned_to_id is None


def test_a_collector_made_admin_hands_over_too_and_one_without_cases_is_not_asked(
    client, login, make_user, make_client, make_case, db_session
):
    admin, promoted, other = make_user("admin"), make_user("collector"), make_user("collector")
    idle = make_user("collector")
    cases = _book(make_case, make_client(), promoted, 2)
    login(admin)
    refused = post_form(
        client, f"/agency/users/{promoted.id}", _user_form(promoted, role="admin", active="y")
    )
    assert refused.status_code == 422 and "say where" in refused.get_data(as_text=True)
    db_session.refresh(promoted)
    assert promoted.role == "collector"
    moved = post_form(
        client,
        f"/agency/users/{promoted.id}",
        _user_form(promoted, role="admin", active="y", hand_over_to=str(other.id)),
    )
    assert moved.status_code == 302
    assert _owners(db_session, cases) == [other.id] * 2
    assert "go to" not in client.get(f"/agency/users/{idle.id}").get_data(as_text=True)
    response = post_form(client, f"/agency/users/{idle.id}", _user_form(idle))  # deactivated
    assert response.status_code == 302
    db_session.refresh(idle)
    assert not idle.active
