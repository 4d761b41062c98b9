"""The 5 days of 12 CFR 1006.34(a)(1) and the mail house (SPEC §6.7): `flask notices send`,
the print file and its manifest, the mailing date the period runs from, and the alerts."""

import csv
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from pypdf import PdfReader

from cases import audit
from cases.contact_log import ContactRefused, gate, record_contact
from cases.contacts import ComplianceAlert
from cases.notices import NoticeRun
from cases.validation import validation_period_end

NEW_YORK = ZoneInfo("America/New_York")
ACTOR = audit.Actor(None, "test")


def at(day: str, hour: int = 11) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=NEW_YORK)


def run(cli, *args):
    result = cli.invoke(args=["notices", "send", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def alerts(db_session, case, kind=None):
    query = sa.select(ComplianceAlert).where(ComplianceAlert.case_id == case.id)
    if kind:
        query = query.where(ComplianceAlert.kind == kind)
    return db_session.scalars(query).all()


def test_after_a_call_the_notice_is_due_in_5_days_and_then_nothing_else_may_go_out(
    make_client, make_case, db_session, cli
):
    case = make_case(make_client())
    with time_machine.travel(at("2026-12-09", 12), tick=False):
        record_contact(
            db_session,
            case,
            channel="call",
            direction="outbound",
            outcome="conversation",
            occurred_at=at("2026-12-01"),
            actor=ACTOR,
        )
        assert case.first_communication_at == at("2026-12-01")
        # The gate refuses an email on 12-09: only the notice may go out now.
        with pytest.raises(ContactRefused, match="validation notice was due by"):
            gate(db_session, case, "email", at("2026-12-09"))
        gate(db_session, case, "letter", at("2026-12-09"), purpose="validation_notice")
        # An email that went out anyway is recorded with the violation, and raises an alert.
        recorded = record_contact(
            db_session,
            case,
            channel="email",
            direction="outbound",
            occurred_at=at("2026-12-09"),
            actor=ACTOR,
        )
        assert [v.rule for v in recorded.violations] == ["validation_notice_overdue"]
        assert len(alerts(db_session, case)) == 1


def test_the_daily_run_raises_an_alert_for_an_overdue_notice_once(
    make_client, make_case, db_session, cli
):
    case = make_case(make_client(), phone=None, email=None)
    case.debtor.addresses.clear()  # nothing to mail it to: it stays unsent
    record_contact(
        db_session,
        case,
        channel="call",
        direction="inbound",
        outcome="conversation",
        occurred_at=at("2026-11-20"),
        actor=ACTOR,
        now=at("2026-11-20", 12),
    )
    # A no-answer call before it starts no clock (no communication).
    assert case.first_communication_at == at("2026-11-20")
    db_session.flush()
    with time_machine.travel(at("2026-11-26", 12), tick=False):
        summary = run(cli, "--as-of", "2026-11-26")
        assert summary["alerts"]["notice_overdue"] == [case.reference]
        assert summary["held"] == [f"{case.reference}: no postal address to mail the notice to"]
        again = run(cli, "--as-of", "2026-11-26")
    assert again["alerts"]["notice_overdue"] == []
    assert len(alerts(db_session, case, "notice_overdue")) == 1


def test_a_no_answer_call_or_a_voicemail_starts_no_clock(make_client, make_case, db_session):
    case = make_case(make_client())
    for outcome in ("no_answer", "voicemail", "busy"):
        record_contact(
            db_session,
            case,
            channel="call",
            direction="outbound",
            outcome=outcome,
            occurred_at=at("2026-11-20"),
            actor=ACTOR,
        )
    assert case.first_communication_at is None


def test_notices_send_writes_one_print_file_in_mailing_order_and_is_idempotent(
    make_client, make_case, db_session, cli, app
):
    client = make_client()
    west = make_case(client, last_name="West", postal_code="94103", state="CA")
    east = make_case(client, last_name="East", postal_code="02108", state="MA")
    active = make_case(client, status="active")
    summary = run(cli, "--as-of", "2026-11-23")
    assert summary["sent"] == 2
    assert summary["cases"] == [east.reference, west.reference]  # by ZIP: mailing order
    reader = PdfReader(summary["print_file"])
    text = [" ".join(page.extract_text().split()) for page in reader.pages]
    with open(summary["manifest"], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["reference"] for r in rows] == [east.reference, west.reference]
    assert [r["postal_code"] for r in rows] == ["02108", "94103"]
    assert int(rows[0]["first_page"]) == 1
    second = int(rows[1]["first_page"])
    assert second == 1 + int(rows[0]["pages"])
    assert second - 1 + int(rows[1]["pages"]) == len(reader.pages)
    assert "East" in text[0] and "West" in text[second - 1]
    for case in (east, west):
        db_session.refresh(case)
        assert case.status == "active"
        assert case.validation_sent_at is not None and case.validation_mailed_on is None
    db_session.refresh(active)
    assert active.validation_sent_at is None

    again = run(cli, "--as-of", "2026-11-23")
    assert again["sent"] == 0 and again["print_file"] is None
    assert db_session.scalar(sa.select(sa.func.count()).select_from(NoticeRun)) == 1


def test_the_mailing_date_sets_the_period_and_an_unconfirmed_run_raises_an_alert(
    make_client, make_case, db_session, cli, login, make_user, client
):
    from cases.notices import NoticeError, confirm_mailed, confirm_run_mailed

    late = make_case(make_client())
    run(cli, "--as-of", "2026-11-23")  # Monday; Thanksgiving is Thursday 11-26
    db_session.refresh(late)
    # Wednesday is the second business day: no alert yet.
    with time_machine.travel(at("2026-11-25", 12), tick=False):
        assert run(cli, "--as-of", "2026-11-25")["alerts"]["notice_not_mailed"] == []
    with time_machine.travel(at("2026-11-27", 12), tick=False):
        assert run(cli, "--as-of", "2026-11-27")["alerts"]["notice_not_mailed"] == [late.reference]
    assert len(alerts(db_session, late, "notice_not_mailed")) == 1

    notice_run = db_session.scalar(sa.select(NoticeRun))
    with time_machine.travel(at("2026-11-27", 12), tick=False):
        confirm_run_mailed(
            db_session,
            notice_run,
            mailed_on=dt.date(2026, 11, 24),
            today=dt.date(2026, 11, 27),
            zone=NEW_YORK,
            actor=ACTOR,
        )
    db_session.flush()
    db_session.refresh(late)
    assert late.validation_mailed_on == dt.date(2026, 11, 24)
    # Mailed Tue 11-24: received Wed 12-02 (Thanksgiving skipped), period ends 01-01.
    assert late.validation_period_ends_on == validation_period_end(dt.date(2026, 11, 24))
    assert late.validation_period_ends_on == dt.date(2027, 1, 1)
    # Once confirmed, it stays: a second confirmation is refused.
    with pytest.raises(NoticeError, match="already confirmed as mailed on 2026-11-24"):
        confirm_mailed(
            db_session,
            [late],
            mailed_on=dt.date(2026, 11, 25),
            today=dt.date(2026, 11, 27),
            zone=NEW_YORK,
            actor=ACTOR,
        )


def test_a_supervisor_sends_the_notices_and_confirms_the_mailing_from_the_notices_page(
    make_client, make_case, db_session, client, login, make_user
):
    from tests.conftest import csrf_from

    case = make_case(make_client())
    login(make_user("collector"))
    assert client.get("/agency/notices").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})
    login(make_user("supervisor"))
    page = client.get("/agency/notices")
    assert "1 case(s) waiting" in page.get_data(as_text=True)
    assert client.post("/agency/notices/send", data={}).status_code == 400  # no CSRF token
    response = client.post("/agency/notices/send", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    db_session.refresh(case)
    assert case.status == "active" and case.notice_run_id is not None
    page = client.get("/agency/notices")
    text = page.get_data(as_text=True)
    assert "Confirm mailed" in text
    pdf = client.get(f"/agency/notices/runs/{case.notice_run_id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    manifest = client.get(f"/agency/notices/runs/{case.notice_run_id}.csv")
    assert case.reference in manifest.get_data(as_text=True)

    # A mailing day still to come is refused, and changes nothing.
    token = csrf_from(page)
    url = f"/agency/notices/runs/{case.notice_run_id}/mailed"
    client.post(url, data={"csrf_token": token, "mailed_on": "2026-12-30"})
    assert "a day still to come" in client.get("/agency/notices").get_data(as_text=True)
    db_session.refresh(case)
    assert case.validation_mailed_on is None
    client.post(url, data={"csrf_token": token, "mailed_on": "2026-11-23"})
    db_session.refresh(case)
    assert case.validation_mailed_on == dt.date(2026, 11, 23)
    assert case.validation_period_ends_on == validation_period_end(dt.date(2026, 11, 23))
    assert "Confirm mailed" not in client.get("/agency/notices").get_data(as_text=True)


def test_a_notice_printed_from_the_case_screen_is_confirmed_there(
    make_client, make_case, db_session, client, login, make_user
):
    from tests.conftest import csrf_from

    case = make_case(make_client())
    login(make_user("supervisor"))
    page = client.get(f"/agency/cases/{case.reference}")
    client.post(
        f"/agency/cases/{case.reference}/validation-notice", data={"csrf_token": csrf_from(page)}
    )
    page = client.get(f"/agency/cases/{case.reference}")
    assert "not yet confirmed as mailed" in page.get_data(as_text=True)
    client.post(
        f"/agency/cases/{case.reference}/notice-mailed",
        data={"csrf_token": csrf_from(page), "mailed_on": "2026-11-23"},
    )
    db_session.refresh(case)
    assert case.validation_mailed_on == dt.date(2026, 11, 23)
    assert 'id="notice-mailed"' in client.get(f"/agency/cases/{case.reference}").get_data(
        as_text=True
    )
