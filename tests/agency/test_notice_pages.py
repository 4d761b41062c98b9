"""Sending every waiting validation notice from /agency/notices: one print run, a clear result
(how many, which run, each one held back and why), and nothing sent twice."""

import html

import sqlalchemy as sa

from cases.notices import NoticeRun
from tests.conftest import csrf_from


def send_all(client):
    page = client.get("/agency/notices")
    response = client.post("/agency/notices/send", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    return html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))


def test_send_all_waiting_says_what_happened(
    client, login, make_user, make_client, make_case, db_session
):
    acme = make_client()
    sent = [make_case(acme, last_name=name) for name in ("Adams", "Baker")]
    held = make_case(acme, last_name="Clark")
    db_session.delete(held.debtor.addresses[0])
    db_session.flush()
    db_session.expire(held.debtor)

    login(make_user("supervisor"))
    page = client.get("/agency/notices").get_data(as_text=True)
    assert "3 case(s) waiting for their notice." in page
    assert "Send all 3 waiting notice(s)" in page
    assert all(case.reference in page for case in [*sent, held])

    result = send_all(client)
    run = db_session.scalars(sa.select(NoticeRun)).one()
    assert f"2 notice(s) sent in print run {run.id}" in result
    assert "1 notice(s) held back and still waiting:" in result
    assert f"Held: {held.reference}: no postal address to mail the notice to" in result
    assert "1 case(s) waiting for their notice." in result  # the held one stays waiting
    assert f'id="run-{run.id}"' in result and run.notice_count == 2
    for case in sent:
        db_session.refresh(case)
        assert case.status == "active" and case.notice_run_id == run.id
    db_session.refresh(held)
    assert held.status == "new" and held.validation_sent_at is None

    # Sending again sends nothing twice: only the held case is tried, and held again.
    again = send_all(client)
    assert "sent in print run" not in again
    assert f"Held: {held.reference}: no postal address" in again
    assert db_session.scalar(sa.select(sa.func.count()).select_from(NoticeRun)) == 1


def test_nothing_waiting(client, login, make_user, db_session):
    login(make_user("admin"))
    page = client.get("/agency/notices").get_data(as_text=True)
    assert "No notices are waiting." in page and "Send all" not in page
    result = send_all(client)
    assert "No notices were waiting: nothing was sent." in result
    assert db_session.scalar(sa.select(sa.func.count()).select_from(NoticeRun)) == 0


def test_send_needs_a_token_and_a_supervisor(client, login, make_user, make_client, make_case):
    case = make_case(make_client())
    login(make_user("collector"))
    assert client.post("/agency/notices/send", data={}).status_code in (400, 403)
    page = client.get("/agency/")
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    login(make_user("supervisor"))
    assert client.post("/agency/notices/send", data={}).status_code == 400
    assert case.validation_sent_at is None and case.status == "new"
