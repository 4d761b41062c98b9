"""A month's statements issued from /agency/statements/runs: one job per client (RQ with Redis,
in-process without), progress counted as they finish, nothing issued twice, refusals that
change nothing, and who may do it."""

import datetime as dt

import sqlalchemy as sa
import time_machine

from cases import audit
from cases.audit import AuditEvent
from correspondence.statement_mail import issue_statement
from payments.posting import post_payment
from payments.statements import Month, Statement, StatementRun, StatementRunItem
from tests.conftest import csrf_from, drain_jobs

ACTOR = audit.Actor(None, "test")
REFERRED = dt.date(2026, 10, 1)


def paid_in_october(db_session, make_case, client, cents, *, direct=False):
    case = make_case(client, principal=50_000, status="active", referred_on=REFERRED)
    post_payment(
        db_session,
        case,
        cents,
        external_id=f"p-{client.code}-{cents}",
        received_at=dt.date(2026, 10, 15),
        method="check",
        actor=ACTOR,
        direct=direct,
    )


def two_clients(db_session, make_client, make_case):
    acme, beta = make_client("ACME"), make_client("BETA", "Beta Supply")
    paid_in_october(db_session, make_case, acme, 10_000)  # 25%: fee 25.00, net 75.00
    paid_in_october(db_session, make_case, beta, 20_000)
    paid_in_october(db_session, make_case, beta, 4_000, direct=True)  # fee 10.00 on 40.00
    db_session.flush()
    return acme, beta


def start(client, month="2026-10", clients=""):
    page = client.get("/agency/statements/runs")
    return client.post(
        "/agency/statements/runs",
        data={"month": month, "clients": clients, "csrf_token": csrf_from(page)},
    )


def count(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


def test_issue_a_month_from_the_page_with_progress_and_never_twice(
    app, client, login, make_user, make_client, make_case, db_session, redis_url
):
    two_clients(db_session, make_client, make_case)
    login(make_user("admin"))
    form = client.get("/agency/statements/runs").get_data(as_text=True)
    assert 'value="2026-10"' in form  # the last month that has ended is proposed

    response = start(client)
    assert response.status_code == 303
    run_page = response.headers["Location"]
    run = db_session.scalars(sa.select(StatementRun)).one()
    status_url = f"/agency/statements/runs/{run.id}.json"
    if redis_url:  # the jobs wait on the queue: the page shows 0 of 2 meanwhile
        status = client.get(status_url).json
        assert status == {
            "run": run.id,
            "month": "2026-10",
            "total": 2,
            "done": 0,
            "issued": 0,
            "unchanged": 0,
            "failed": 0,
            "percent": 0,
            "status": "running",
        }
        page = client.get(run_page).get_data(as_text=True)
        assert "0 of 2</strong> clients done" in page and "statement_run.js" in page
        assert '<meta http-equiv="refresh" content="3">' in page  # without JavaScript
    drain_jobs(app)

    status = client.get(status_url).json
    assert status["status"] == "finished" and status["done"] == 2 and status["issued"] == 2
    page = client.get(run_page).get_data(as_text=True)
    assert "2 of 2</strong> clients done: 2 issued, 0 already issued (unchanged), 0 failed" in page
    assert "statement_run.js" not in page and "http-equiv" not in page
    assert "/agency/statements/ST-ACME-2026-10.pdf" in page
    assert "/agency/statements/ST-BETA-2026-10.csv" in page
    assert "$75.00" in page and "$140.00" in page  # 200.00 less 50.00 and 10.00 of fees
    statements = {s.number: s for s in db_session.scalars(sa.select(Statement))}
    assert sorted(statements) == ["ST-ACME-2026-10", "ST-BETA-2026-10"]
    assert statements["ST-BETA-2026-10"].net_remittance == 14_000
    assert statements["ST-BETA-2026-10"].collected_by_client == 4_000
    pdf = {n: s.pdf_sha256 for n, s in statements.items()}

    # Again: nothing issued twice; the same statements come back unchanged.
    response = start(client)
    assert response.status_code == 303
    drain_jobs(app)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 of 2</strong> clients done: 0 issued, 2 already issued (unchanged)" in page
    assert count(db_session, Statement) == 2
    assert {s.number: s.pdf_sha256 for s in db_session.scalars(sa.select(Statement))} == pdf
    history = client.get("/agency/statements/runs").get_data(as_text=True)
    assert f"Run {run.id}" in history and f"Run {run.id + 1}" in history
    started = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "statement_run.started")
    ).all()
    assert len(started) == 2 and started[0].detail["clients"] == ["ACME", "BETA"]


def test_some_clients_only_and_a_failure_is_shown(
    app, client, login, make_user, make_client, make_case, db_session
):
    acme, beta = two_clients(db_session, make_client, make_case)
    with time_machine.travel(dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC), tick=False):
        # BETA's November is issued first: its October can no longer be (month order).
        issue_statement(db_session, beta, Month(2026, 11), actor=ACTOR)
        db_session.flush()
        login(make_user("supervisor"))
        response = start(client, clients="acme, beta")
        assert response.status_code == 303
        drain_jobs(app)
        page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 of 2</strong> clients done: 1 issued, 0 already issued (unchanged), 1 failed" in page
    assert "failed: BETA&#39;s statement for 2026-11 is already issued" in page
    assert "ST-ACME-2026-10" in page
    assert "/agency/statements/ST-ACME-2026-10.pdf" not in page  # files are for admins
    items = db_session.scalars(sa.select(StatementRunItem).order_by(StatementRunItem.id)).all()
    assert [(i.client.code, i.status) for i in items] == [("ACME", "issued"), ("BETA", "failed")]


def test_bad_input_is_refused_and_changes_nothing(
    client, login, make_user, make_client, make_case, db_session
):
    two_clients(db_session, make_client, make_case)
    login(make_user("admin"))
    for month, clients, message in (
        ("2026-13", "", "month must look like YYYY-MM"),
        ("October", "", "month must look like YYYY-MM"),
        ("2026-11", "", "2026-11 has not ended yet in America/New_York"),
        ("2026-10", "ACME, NOPE", "no client with code NOPE"),
        ("2019-01", "", "no client statements to issue for 2019-01"),
        ("", "", "This field is required."),
    ):
        response = start(client, month, clients)
        assert response.status_code == 422, month
        assert message in response.get_data(as_text=True), month
    assert count(db_session, StatementRun) == 0 and count(db_session, Statement) == 0
    no_token = client.post("/agency/statements/runs", data={"month": "2026-10"})
    assert no_token.status_code in (400, 422)
    assert count(db_session, StatementRun) == 0


def test_who_may_run_statements(client, login, make_user, make_client):
    assert client.get("/agency/statements/runs").status_code == 302  # signed out
    login(make_user("collector"))
    assert client.get("/agency/statements/runs").status_code == 403
    assert client.post("/agency/statements/runs", data={"month": "2026-10"}).status_code in (
        400,
        403,
    )
    assert client.get("/agency/statements/runs/1").status_code == 403
    assert client.get("/agency/statements/runs/1.json").status_code == 403


def test_client_users_cannot_run_statements(client, login, make_user, make_client):
    login(make_user("client", client=make_client("ACME")))
    assert client.get("/agency/statements/runs").status_code in (302, 403)


def test_unknown_run(client, login, make_user):
    login(make_user("admin"))
    assert client.get("/agency/statements/runs/999").status_code == 404
    assert client.get("/agency/statements/runs/999.json").status_code == 404
