""" "Next case" moves on: past the cases worked or skipped today, until the agency's tomorrow
or the callback time, whichever comes first."""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import time_machine

from cases.audit import AuditEvent
from cases.queue_holds import QueueHold
from tests.conftest import csrf_from

NY = ZoneInfo("America/New_York")
MORNING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=NY)


def _book(make_user, make_client, make_case, db_session, n=4):
    collector = make_user("collector")
    acme = make_client()
    cases = []
    for i in range(n):
        case = make_case(acme, status="active", last_name=f"Debtor{i}", phone=f"+1212555{i:04d}")
        case.assigned_to_id = collector.id
        case.last_contact_at = dt.datetime(2026, 11, 1 + i, tzinfo=dt.UTC)
        cases.append(case)
    db_session.flush()
    return collector, cases


def _next(client) -> str:
    response = client.get("/agency/queue/next")
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[-1]


def _call(client, reference, phone, outcome="no_answer"):
    page = client.get(f"/agency/cases/{reference}")
    response = client.post(
        f"/agency/cases/{reference}/calls",
        data={
            "call-phone": phone,
            "call-outcome": outcome,
            "call-note": "rang",
            "csrf_token": csrf_from(page),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def _skip(client, reference, **data):
    page = client.get(f"/agency/cases/{reference}")
    return client.post(
        f"/agency/cases/{reference}/skip", data={**data, "csrf_token": csrf_from(page)}
    )


def test_next_case_moves_on_after_a_call_is_logged(
    client, login, make_user, make_client, make_case, db_session
):
    collector, cases = _book(make_user, make_client, make_case, db_session, n=3)
    phones = {c.reference: c.debtor.phones[0].number for c in cases}
    login(collector)
    seen = []
    with time_machine.travel(MORNING, tick=False):
        for _ in range(3):
            reference = _next(client)
            seen.append(reference)
            _call(client, reference, phones[reference])  # no answer: still callable
        assert len(set(seen)) == 3
        page = client.get("/agency/queue/next", follow_redirects=True).get_data(as_text=True)
        assert "Nothing to call right now" in page
    # Tomorrow (agency time) the cases worked today are offered again.
    with time_machine.travel(MORNING + dt.timedelta(days=1), tick=False):
        assert _next(client) in seen


def test_a_note_counts_as_work_and_another_collectors_work_does_not(
    client, login, make_user, make_client, make_case, db_session
):
    collector, cases = _book(make_user, make_client, make_case, db_session, n=2)
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        first = _next(client)
        page = client.get(f"/agency/cases/{first}")
        response = client.post(
            f"/agency/cases/{first}/notes",
            data={"note-body": "asked for a callback", "csrf_token": csrf_from(page)},
        )
        assert response.status_code == 302
        second = _next(client)
        assert second != first
        other = make_user("collector")
        client.post("/logout", data={"csrf_token": csrf_from(client.get("/agency/"))})
        other_case = db_session.scalar(
            sa.select(type(cases[0])).where(type(cases[0]).reference == first)
        )
        other_case.assigned_to_id = other.id
        db_session.flush()
        login(other)
        assert _next(client) == first  # the first collector's note does not hold it for them


def test_a_skip_is_kept_audited_and_held_until_the_callback_time(
    client, login, make_user, make_client, make_case, db_session
):
    collector, cases = _book(make_user, make_client, make_case, db_session, n=2)
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        first = _next(client)
        response = _skip(
            client,
            first,
            reason="  debtor at work,  call after lunch ",
            callback_at="2026-11-23T14:00",
        )
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/agency/queue/next")
        assert _next(client) != first
    hold = db_session.scalars(sa.select(QueueHold)).one()
    assert hold.reason == "debtor at work, call after lunch"
    assert hold.callback_at == dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)  # 14:00 in NY
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "queue.skipped")
    ).one()
    assert event.case_id == hold.case_id and event.actor_user_id == collector.id
    with time_machine.travel(MORNING, tick=False):
        screen = client.get(f"/agency/cases/{first}").get_data(as_text=True)
    # The timeline says it in words, the callback in the agency's time.
    assert (
        "Skipped in the queue: debtor at work, call after lunch (call back 2026-11-23 14:00)"
        in (screen)
    )
    assert "queue.skipped" not in screen
    with time_machine.travel(dt.datetime(2026, 11, 23, 13, 59, tzinfo=NY), tick=False):
        assert _next(client) != first
    with time_machine.travel(dt.datetime(2026, 11, 23, 14, 0, tzinfo=NY), tick=False):
        assert _next(client) == first  # called back (it ranks first)
        second_phone = (
            db_session.scalar(sa.select(type(cases[0])).where(type(cases[0]).reference == first))
            .debtor.phones[0]
            .number
        )
        _call(client, first, second_phone)  # worked after the callback: held again
        assert _next(client) != first


def test_a_callback_later_than_tomorrow_ends_with_the_day(
    client, login, make_user, make_client, make_case, db_session
):
    collector, cases = _book(make_user, make_client, make_case, db_session, n=2)
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        first = _next(client)
        assert (
            _skip(client, first, reason="in court", callback_at="2026-11-25T10:00").status_code
            == 302
        )
        assert _next(client) != first
    with time_machine.travel(MORNING + dt.timedelta(days=1), tick=False):
        assert _next(client) == first


def test_a_skip_without_a_reason_or_with_a_past_callback_changes_nothing(
    client, login, make_user, make_client, make_case, db_session
):
    collector, cases = _book(make_user, make_client, make_case, db_session, n=2)
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        first = _next(client)
        for data, message in (
            ({"reason": "   "}, "Say why you are skipping this case."),
            ({"reason": "x", "callback_at": "2026-11-23T09:00"}, "The callback time has passed"),
            ({"reason": "x", "callback_at": "tomorrow"}, "Not skipped: Not a valid datetime"),
            ({"reason": "x" * 501}, "under 500 characters"),
        ):
            response = _skip(client, first, **data)
            assert response.status_code == 302
            page = client.get(response.headers["Location"]).get_data(as_text=True)
            assert message in page
        assert db_session.scalar(sa.select(sa.func.count()).select_from(QueueHold)) == 0
        assert _next(client) == first
        response = client.post(f"/agency/cases/{first}/skip", data={"reason": "no token"})
        assert db_session.scalar(sa.select(sa.func.count()).select_from(QueueHold)) == 0


def test_nothing_left_says_the_worked_cases_come_back(
    client, login, make_user, make_client, make_case, db_session
):
    collector, cases = _book(make_user, make_client, make_case, db_session, n=1)
    login(collector)
    with time_machine.travel(MORNING, tick=False):
        first = _next(client)
        _skip(client, first, reason="wrong time")
        page = client.get("/agency/queue/next", follow_redirects=True).get_data(as_text=True)
    assert "the 1 case(s) you worked or skipped today come back tomorrow" in page
